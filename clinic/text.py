def search_key(text: str) -> str:
    """Fold a name for search in any script: case-folded, ё as е, single spaces."""
    return " ".join(text.casefold().replace("ё", "е").split())

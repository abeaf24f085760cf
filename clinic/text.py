def search_key(text: str) -> str:
    """Fold a name for search in any script: case-folded, ё as е, single spaces."""
    return " ".join(text.casefold().replace("ё", "е").split())


# A search word shorter than this matches the start of a part of the name (the family name, when it is the
# first word), not any part of it: one or two letters are inside most names, so "contains" would list the whole
# clinic, and such a word holds no trigram for the index to look up. The live search sends them while the GP
# types, so they must be fast and still narrow the list: "и" lists the family names starting with И.
SUBSTRING_MIN = 3


def lower_first(text: str) -> str:
    """A name continuing a sentence: its first letter in lower case, the rest as written, so abbreviations
    keep their capitals (Russian "ДТП", the unit "°C") where `lower` would write "дтп" and "°c". A name that
    starts with an abbreviation ("МРТ", "ESR") is left as it is."""
    text = str(text or "")
    if len(text) > 1 and text[1].isupper():
        return text
    return text[:1].lower() + text[1:]

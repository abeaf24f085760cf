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


def _script(letter: str) -> str | None:
    if "а" <= letter.lower() <= "я" or letter in "ёЁ":
        return "cyrillic"
    if "a" <= letter.lower() <= "z":
        return "latin"
    return None


def foreign_letters(name: str) -> tuple[str, str]:
    """The alphabet ("latin" or "cyrillic") and the letters of a name's word written in it when the rest of that
    word is in the other one ("Пeтрoва" typed with a Latin e and o gives ("latin", "e, o")), or ("", "") when each
    word keeps to one alphabet. Such a name looks right on screen and on paper, but no search finds it in either
    alphabet and it does not match the same patient typed correctly."""
    for word in name.replace("-", " ").replace("'", " ").split():
        scripts = [_script(letter) for letter in word]
        cyrillic, latin = scripts.count("cyrillic"), scripts.count("latin")
        if cyrillic and latin:
            minority = "latin" if latin <= cyrillic else "cyrillic"
            odd = [letter for letter, script in zip(word, scripts, strict=True) if script == minority]
            return minority, ", ".join(dict.fromkeys(odd))
    return "", ""

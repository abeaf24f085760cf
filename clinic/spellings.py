"""Other spellings of what a GP typed in the patient search, for when it finds nobody: the same keys pressed with
the other keyboard layout active ("Bdfyjdf" for «Иванова», "ыьшер" for "Smith"), and a name typed in Latin
letters read back into Cyrillic ("Shcherbakova" for «Щербакова»). Pure: no database, no Django.

No package does the second: the transliteration packages go from Cyrillic to Latin (iuliia), or back by schemes
other than the passport's (cyrtranslit, transliterate). Both tables are small, so they are kept here."""

from __future__ import annotations

import re

# The keys of the ЙЦУКЕН layout in the places of the QWERTY keys, the shifted keys with them: the punctuation
# keys [ ] ; ' , . ` are letters on the Russian layout (х ъ ж э б ю ё).
_QWERTY = "qwertyuiop[]asdfghjkl;'zxcvbnm,.`" + 'QWERTYUIOP{}ASDFGHJKL:"ZXCVBNM<>~'
_JCUKEN = "йцукенгшщзхъфывапролджэячсмитьбюё" + "ЙЦУКЕНГШЩЗХЪФЫВАПРОЛДЖЭЯЧСМИТЬБЮЁ"
_TO_CYRILLIC = str.maketrans(_QWERTY, _JCUKEN)
_TO_LATIN = str.maketrans(_JCUKEN, _QWERTY)

_LATIN_LETTER = re.compile(r"[A-Za-z]")
_CYRILLIC_LETTER = re.compile(r"[А-Яа-яЁё]")


def layout_swapped(text: str) -> str | None:
    """`text` as the same keys give on the other layout: Latin letters (and the punctuation keys that are letters
    there) as Russian ones when the text is mostly Latin, Russian letters as Latin ones otherwise; None when that
    changes nothing (no letter of either layout)."""
    latin, cyrillic = len(_LATIN_LETTER.findall(text)), len(_CYRILLIC_LETTER.findall(text))
    if not (latin or cyrillic):
        return None
    # On a Russian text the punctuation keys stay what they are: a comma there is a comma, not a mistyped «б».
    swapped = text.translate(_TO_CYRILLIC if latin >= cyrillic else _TO_LATIN)
    return swapped if swapped != text else None


# The passport scheme (ICAO 9303, МВД 2013) read backwards, with the spellings a GP also types for the same
# letters (yu, ya, ye, yo, zh, h, x, j...). Longest first. "ie" is и+е (Дмитриев, Сергиенко), never the ъ the
# scheme writes so, which is in almost no name.
_DIGRAPHS = {
    "shch": "щ",
    "iia": "ия",  # Мария → Mariia, Анастасия → Anastasiia: not «Марйа»
    "iiu": "ию",
    "sch": "щ",
    "zh": "ж",
    "kh": "х",
    "ts": "ц",
    "ch": "ч",
    "sh": "ш",
    "iu": "ю",
    "yu": "ю",
    "ju": "ю",
    "ia": "я",
    "ya": "я",
    "ja": "я",
    "yo": "ё",
    "jo": "ё",
    "je": "е",
    "ye": "е",
}
_LETTERS = {
    "a": "а",
    "b": "б",
    "c": "ц",
    "d": "д",
    "e": "е",
    "f": "ф",
    "g": "г",
    "h": "х",
    "i": "и",
    "j": "й",
    "k": "к",
    "l": "л",
    "m": "м",
    "n": "н",
    "o": "о",
    "p": "п",
    "q": "к",
    "r": "р",
    "s": "с",
    "t": "т",
    "u": "у",
    "v": "в",
    "w": "в",
    "x": "кс",
    "y": "ы",
    "z": "з",
    "'": "ь",
}
_VOWELS = set("аеёиоуыэюя")
_LONGEST = max(map(len, _DIGRAPHS))


def _cyrillic_letters(latin: str, before: str, rest: str) -> str:
    """What one Latin letter or digraph (lower case) stands for, after the Cyrillic `before` ("" at a word's
    start), with `rest` of the word after it."""
    after_vowel, at_end = before in _VOWELS, not rest
    if latin == "i" and before == "а" and rest == "l":
        return "и"  # Михаил, Исмаил (Mikhail) against Михайлов (Mikhailov), Зайцев
    if latin == "ye":
        # Vasilyev, Grigoryeva: «ье» after a consonant; Yelena, Sergeyev: «е».
        return "е" if after_vowel or not before.isalpha() else "ье"
    if latin in ("i", "y") and after_vowel and (before != "и" or at_end or latin == "y"):
        # Зайцев (Zaitsev), Толстой (Tolstoi, Tolstoy), Андрей, Дмитрий (Dmitrii, Dmitriy), Белый (Belyy); but
        # Даниил (Daniil) inside a word.
        return "й"
    if latin == "y" and at_end and before.isalpha():
        return "ий"  # Mayakovsky, Trotsky: English spelling drops the и of -ский, -цкий
    return _DIGRAPHS.get(latin) or _LETTERS.get(latin) or latin


def cyrillic_from_latin(text: str) -> str | None:
    """A name typed in Latin letters in Cyrillic, by the passport scheme read backwards and the common spellings
    beside it (Shcherbakova → Щербакова, Kuznetsova → Кузнецова, Zaitsev → Зайцев, Vasilyev → Васильев,
    Dmitrii/Dmitriy → Дмитрий); what is not a Latin letter stays. None when the text has no Latin letter.
    A letter the scheme drops (ь in Васильева → Vasileva) cannot come back."""
    if not _LATIN_LETTER.search(text):
        return None
    lower = text.lower()
    out: list[str] = []
    position = 0
    while position < len(text):
        for size in range(_LONGEST, 0, -1):
            piece = lower[position : position + size]
            if len(piece) == size and (size == 1 or piece in _DIGRAPHS):
                break
        if piece == "'" and not (out and out[-1][-1:].isalpha()):
            letters = piece  # an apostrophe not after a letter is not a soft sign
        elif piece.isascii() and (piece.isalpha() or piece == "'"):
            rest = re.match(r"[a-z']*", lower[position + size :]).group()
            letters = _cyrillic_letters(piece, out[-1][-1:] if out else "", rest)
            if text[position].isupper():
                letters = letters[0].upper() + letters[1:]
        else:
            letters = text[position]
        out.append(letters)
        position += len(piece)
    return "".join(out)

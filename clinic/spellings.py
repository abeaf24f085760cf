"""Other spellings of what a GP typed in the patient search, for when it finds nobody: the same keys pressed with
the other keyboard layout active ("Bdfyjdf" for «Иванова», "ыьшер" for "Smith"), and a name typed in Latin
letters read back into Cyrillic ("Shcherbakova" for «Щербакова»). Pure: no database, no Django.

No package does the second: the transliteration packages go from Cyrillic to Latin (iuliia), or back by schemes
other than the passport's (cyrtranslit, transliterate). Both tables are small, so they are kept here."""

from __future__ import annotations

import itertools
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


def _other_readings(latin: str, before: str, rest: str) -> tuple[str, ...]:
    """Other Cyrillic letters the same Latin may stand for, where the scheme loses a letter or the spelling is
    ambiguous, for cyrillic_spellings to try when the first reading finds nobody: the ь before a consonant or at
    a word's end (Olga → Ольга, Igor → Игорь), and я, ю after a consonant (Maria → Мария, Daria → Дарья,
    Ilya → Илья)."""
    after_consonant = before.isalpha() and before not in _VOWELS and before not in "ьъй"
    starts_vowel = rest[:1] in ("a", "e", "i", "o", "u", "y")
    if latin == "l" and before and not starts_vowel:
        return ("ль",)
    if latin == "r" and before and not rest:
        return ("рь",)
    if latin in ("ia", "ya") and after_consonant:
        return ("ия", "ья")
    if latin in ("iu", "yu") and after_consonant:
        return ("ию", "ью")
    return ()


def _readings(text: str) -> list[tuple[str, ...]] | None:
    """`text` letter by letter (or digraph) as the Cyrillic it may stand for, the likeliest reading first."""
    if not _LATIN_LETTER.search(text):
        return None
    lower = text.lower()
    out: list[tuple[str, ...]] = []
    position = 0
    while position < len(text):
        for size in range(_LONGEST, 0, -1):
            piece = lower[position : position + size]
            if len(piece) == size and (size == 1 or piece in _DIGRAPHS):
                break
        if piece == "'" and not (out and out[-1][0][-1:].isalpha()):
            options = (piece,)  # an apostrophe not after a letter is not a soft sign
        elif piece.isascii() and (piece.isalpha() or piece == "'"):
            rest = re.match(r"[a-z']*", lower[position + size :]).group()
            before = out[-1][0][-1:] if out else ""
            options = (_cyrillic_letters(piece, before, rest), *_other_readings(piece, before, rest))
            if text[position].isupper():
                options = tuple(letters[0].upper() + letters[1:] for letters in options)
        else:
            options = (text[position],)
        out.append(options)
        position += len(piece)
    return out


def cyrillic_from_latin(text: str) -> str | None:
    """A name typed in Latin letters in Cyrillic, by the passport scheme read backwards and the common spellings
    beside it (Shcherbakova → Щербакова, Kuznetsova → Кузнецова, Zaitsev → Зайцев, Vasilyev → Васильев,
    Dmitrii/Dmitriy → Дмитрий); what is not a Latin letter stays. None when the text has no Latin letter.
    A letter the scheme drops (ь in Васильева → Vasileva) cannot come back here: see cyrillic_spellings."""
    readings = _readings(text)
    return None if readings is None else "".join(options[0] for options in readings)


def cyrillic_spellings(text: str, *, most: int = 8) -> list[str]:
    """The Cyrillic spellings a name typed in Latin letters may stand for, the likeliest first (cyrillic_from_latin's),
    then those that read one ambiguous place otherwise, then two, and so on, at most `most` in all: "Olga Maria" →
    «Олга Маря», «Ольга Маря», «Олга Мария», «Олга Марья», «Ольга Мария»... Empty when the text has no Latin
    letter."""
    readings = _readings(text)
    if readings is None:
        return []
    ambiguous = [index for index, options in enumerate(readings) if len(options) > 1]
    spellings: list[str] = []
    for count in range(len(ambiguous) + 1):
        for places in itertools.combinations(ambiguous, count):
            for choice in itertools.product(*(readings[index][1:] for index in places)):
                chosen = dict(zip(places, choice, strict=True))
                spellings.append("".join(chosen.get(index, options[0]) for index, options in enumerate(readings)))
                if len(spellings) == most:
                    return spellings
    return spellings


def foreign_letters(name: str) -> tuple[str, str]:
    """The alphabet ("latin" or "cyrillic") and the letters of a name's word written in it when the rest of that
    word is in the other one ("Пeтрoва" typed with a Latin e and o gives ("latin", "e, o")), or ("", "") when each
    word keeps to one alphabet. Such a name looks right on screen and on paper, but no search finds it in either
    alphabet and it does not match the same patient typed correctly."""
    for word in name.replace("-", " ").replace("'", " ").split():
        latin, cyrillic = _LATIN_LETTER.findall(word), _CYRILLIC_LETTER.findall(word)
        if latin and cyrillic:
            minority, odd = ("latin", latin) if len(latin) <= len(cyrillic) else ("cyrillic", cyrillic)
            return minority, ", ".join(dict.fromkeys(odd))
    return "", ""

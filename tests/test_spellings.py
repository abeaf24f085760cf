"""The other spellings the patient search tries (clinic.spellings): the other keyboard layout, and a name in Latin
letters read back into Cyrillic, checked against a reference table of the passport scheme."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinic.spellings import cyrillic_from_latin, cyrillic_spellings, layout_swapped
from clinic.text import search_key

QWERTY_KEYS = "qwertyuiop[]asdfghjkl;'zxcvbnm,.`QWERTYUIOP{}ASDFGHJKL:\"ZXCVBNM<>~"
CYRILLIC = "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"
NEUTRAL = " 0123456789-"
LETTER_KEYS = set(CYRILLIC) - set("хъжэбюёХЪЖЭБЮЁ")

# ICAO 9303 / МВД 2013 (the Russian passport), written out independently of the module under test.
ICAO = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        "a b v g d e e zh z i i k l m n o p r s t u f kh ts ch sh shch ie y - e iu ia".split(),  # noqa: SIM905
        strict=True,
    )
)
ICAO["ь"] = ""

# Common family and given names without ъ or э (the scheme writes ъ as ie, э as e), nor a vowel before и
# (Моисеев reads back as «Мойсеев»: the scheme writes и and й alike).
NAMES = """Иванова Смирнов Кузнецова Попов Соколова Михайлов Новиков Фёдоров Морозова Волков Алексеев Лебедев Семёнов
Егоров Павлов Козлов Степанов Николаев Орлов Андреев Макаров Никитин Захаров Зайцева Борисов Яковлев Романов
Сергеев Фролов Александров Дмитриев Королёв Гусев Киселёв Максимов Поляков Сорокин Виноградов Ковалёв Белов
Медведев Антонов Тарасов Жуков Баранов Филиппов Комаров Давыдов Беляев Герасимов Богданов Осипов Сидоров Матвеев
Титов Марков Миронов Крылов Куликов Карпов Власов Мельников Денисов Гаврилов Тихонов Казаков Данилов Тимофеев
Фомин Чернов Абрамов Мартынов Ефимов Федотов Щербакова Назаров Калинин Исаев Чернышёв Быков Маслов Родионов
Коновалов Лазарев Воронин Климов Филатов Пономарёв Голубев Кудрявцев Прохоров Наумов Потапов Журавлёв Овчинников
Трофимов Леонов Соболев Ермаков Колесников Гончаров Никифоров Грачёв Котов Гришин Ефремов Архипов Громов Кириллов
Малышев Панов Румянцев Акимов Бирюков Горбунов Анисимов Тихомиров Галкин Михеев Скворцов Юдин Белоусов Нестеров
Симонов Харитонов Князев Цветков Левин Митрофанов Воронов Аксёнов Логинов Горшков Савин Краснов Майоров Демидов
Елисеев Рыбаков Сафонов Плотников Хохлов Жданов Ищенко Чайковский Толстой Белый Шевченко Яковлева Юрьев
Анна Мария Анастасия Юлия Ксения Валерия Дмитрий Георгий Андрей Сергей Николай Алексей Евгений Михаил Даниил
Ирина Елена Татьяна Наталья Ольга Светлана Пётр Иван Вера Надежда""".split()  # noqa: SIM905
# The scheme drops ь: Юрьев, Ольга come back as «Юрев», «Олга», which a search does not find.
LOSES_SOFT_SIGN = {name for name in NAMES if "ь" in name}


def icao(name: str) -> str:
    latin = "".join(ICAO.get(letter.lower(), letter) for letter in name)
    return latin[:1].upper() + latin[1:] if name[:1].isupper() else latin


@pytest.mark.parametrize("name", sorted(set(NAMES) - LOSES_SOFT_SIGN))
def test_a_common_name_in_the_passport_spelling_reads_back_as_the_name(name):
    assert search_key(cyrillic_from_latin(icao(name))) == search_key(name)
    assert cyrillic_from_latin(icao(name))[0] == name[0].replace("Ё", "Е")  # a capital stays a capital


@given(st.lists(st.sampled_from(sorted(set(NAMES) - LOSES_SOFT_SIGN)), min_size=1, max_size=3).map(" ".join))
def test_a_full_name_in_the_passport_spelling_reads_back_as_the_full_name(name):
    assert search_key(cyrillic_from_latin(icao(name))) == search_key(name)


@pytest.mark.parametrize(
    ("typed", "name"),
    [
        ("ivanova", "иванова"),
        ("Shcherbakova", "Щербакова"),
        ("Kuznetsova", "Кузнецова"),
        ("Vasilyev", "Васильев"),
        ("Vasil'eva", "Васильева"),
        ("Grigoryeva", "Григорьева"),
        ("Yelena", "Елена"),
        ("Sergeyev", "Сергеев"),
        ("Dmitriy", "Дмитрий"),
        ("Tolstoy", "Толстой"),
        ("Mayakovsky", "Маяковский"),
        ("Krasnyy", "Красный"),
        ("Fyodorov", "Фёдоров"),
        ("Yakovleva", "Яковлева"),
        ("Mikhail Mikhailov", "Михаил Михайлов"),
        ("Aleksandr", "Александр"),
        ("Ivanova-Petrova", "Иванова-Петрова"),
    ],
)
def test_the_other_common_latin_spellings_of_a_name_read_back_as_the_name(typed, name):
    assert cyrillic_from_latin(typed) == name


def test_a_text_without_a_latin_letter_has_no_cyrillic_reading():
    assert cyrillic_from_latin("Иванова") is None
    assert cyrillic_from_latin("123 45") is None
    assert cyrillic_from_latin("") is None


@given(st.text(max_size=30))
def test_reading_latin_into_cyrillic_leaves_no_latin_letter(text):
    reading = cyrillic_from_latin(text)
    if not any(char.isascii() and char.isalpha() for char in text):
        assert reading is None
    else:
        assert not any(char.isascii() and char.isalpha() for char in reading)


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" + NEUTRAL, min_size=1, max_size=30))
def test_reading_latin_into_cyrillic_keeps_the_spaces_digits_and_hyphens(text):
    reading = cyrillic_from_latin(text) or text
    assert [char for char in reading if char in NEUTRAL] == [char for char in text if char in NEUTRAL]


@given(st.text(alphabet=QWERTY_KEYS + NEUTRAL, max_size=30).filter(lambda text: any(c.isalpha() for c in text)))
def test_swapping_the_layout_of_latin_keys_twice_gives_them_back(text):
    swapped = layout_swapped(text)
    assert not any(char.isascii() and char.isalpha() for char in swapped)
    assert layout_swapped(swapped) == text


# With a letter whose key is a letter on QWERTY too: «хъ» alone gives "[]", in which there is no letter to swap.
@given(st.text(alphabet=CYRILLIC + NEUTRAL, max_size=30).filter(lambda text: any(c in LETTER_KEYS for c in text)))
def test_swapping_the_layout_of_russian_letters_twice_gives_them_back(text):
    swapped = layout_swapped(text)
    assert not any(char in CYRILLIC for char in swapped)
    assert layout_swapped(swapped) == text


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("Bdfyjdf", "Иванова"),
        ("gtnhjd", "петров"),
        ("ыьшер", "smith"),
        ("Ifhbr Fyyf", "Шарик Анна"),
        ("Ktjyjdf", "Леонова"),
        ("ujh`rby", "горёкин"),
        ("{jkjgjdf", "Холопова"),
        ("Fktrc,", "Алексб"),
    ],
)
def test_keys_typed_on_the_wrong_layout_read_as_on_the_other(typed, meant):
    assert layout_swapped(typed) == meant


def test_a_comma_typed_on_the_russian_layout_stays_a_comma():
    assert layout_swapped("Иванова, Анна") == "Bdfyjdf, Fyyf"


def test_a_text_with_no_letter_has_no_other_layout():
    assert layout_swapped("12.03.1980") is None
    assert layout_swapped("") is None


# ь before е is not guessed back (Iurev could be Юрев as well as Юрьев, and guessing it before every е would
# crowd out the readings that matter more).
@pytest.mark.parametrize("name", sorted(LOSES_SOFT_SIGN - {"Юрьев"}))
def test_a_name_whose_soft_sign_the_scheme_drops_is_among_the_first_readings(name):
    """Ольга, Наталья come back from the passport spelling as «Олга», «Наталя» first; the search tries the others."""
    readings = [search_key(spelling) for spelling in cyrillic_spellings(icao(name), most=6)]
    assert search_key(name) in readings


def test_the_first_reading_is_cyrillic_from_latin_and_the_readings_are_capped():
    assert cyrillic_spellings("Olga Maria")[0] == cyrillic_from_latin("Olga Maria") == "Олга Маря"
    assert len(cyrillic_spellings("Olga Maria Daria Ilya Igor", most=5)) == 5
    assert len(set(cyrillic_spellings("Olga Maria Daria Ilya Igor"))) == len(
        cyrillic_spellings("Olga Maria Daria Ilya Igor")
    )
    assert cyrillic_spellings("Смирнова") == []

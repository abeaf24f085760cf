"""The Russian interface catalogue is complete and its compiled form is current: a fresh checkout shows
Russian with no extra step, and no string falls back to English unnoticed."""

import ast
import gettext
import re
from pathlib import Path

PO = Path(__file__).resolve().parent.parent / "locale" / "ru" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")


def _string(lines: list[str]) -> str:
    return "".join(ast.literal_eval(line) for line in lines)


def po_entries():
    """(msgctxt, msgid, [msgstr...], flags) for every entry but the header."""
    entries = []
    for block in PO.read_text(encoding="utf-8").split("\n\n"):
        lines = [line for line in block.splitlines() if line and not line.startswith("#~")]
        flags = " ".join(line for line in lines if line.startswith("#,"))
        parts, key = {}, None
        for line in lines:
            if line.startswith("#"):
                continue
            match = re.match(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d\])?) (".*")$', line)
            if match:
                key = match.group(1)
                parts[key] = [match.group(2)]
            elif key and line.startswith('"'):
                parts[key].append(line)
        if "msgid" not in parts or _string(parts["msgid"]) == "":
            continue
        strings = [_string(value) for name, value in parts.items() if name.startswith("msgstr")]
        entries.append((_string(parts.get("msgctxt", ['""'])), _string(parts["msgid"]), strings, flags))
    return entries


def test_every_interface_string_has_its_russian_translation():
    entries = po_entries()

    assert len(entries) > 300
    assert [msgid for _, msgid, strings, _ in entries if not all(strings)] == []
    assert [msgid for _, msgid, _, flags in entries if "fuzzy" in flags] == []


def test_the_compiled_catalogue_matches_the_source():
    with MO.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    for context, msgid, strings, _ in po_entries():
        key = f"{context}\x04{msgid}" if context else msgid
        translated = compiled._catalog.get(key, compiled._catalog.get((key, 0)))
        assert translated == strings[0], msgid


def test_russian_plurals_have_three_forms():
    header = PO.read_text(encoding="utf-8").split("\n\n")[0]
    assert "nplurals=3" in header
    plural_entries = [strings for _, _, strings, _ in po_entries() if len(strings) > 1]
    assert plural_entries and all(len(strings) == 3 for strings in plural_entries)

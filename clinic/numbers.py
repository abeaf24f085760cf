"""Whole numbers typed into a request: a page number, an id in a path, a query or a reference, a count.

`str.isdigit()` is no test for them: it takes "²", which `int()` refuses, and a run of five thousand digits,
which `int()` refuses too, while a number of twenty digits fits no database column (SQLite and PostgreSQL
refuse it in a query). Each of those was a server error; read through here, each is simply not a number."""

from __future__ import annotations

import re

_ASCII_DIGITS = re.compile(r"[0-9]{1,18}")

# What a bigint column holds, with room (2**63 - 1 is 9.2e18).
ID_MOST = 10**18 - 1
# The furthest page a list serves: far past any patient list a clinic has, and well inside a bigint once the
# page's offset is worked out from it.
PAGE_MOST = 10**6


def whole_number(text, *, most: int = ID_MOST) -> int | None:
    """`text` as a whole number when it is written in ASCII digits alone and is at most `most`; else None."""
    if not isinstance(text, str) or not _ASCII_DIGITS.fullmatch(text):
        return None
    number = int(text)
    return number if number <= most else None

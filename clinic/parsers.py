"""JSON the record can take: standard JSON only, and not too deep.

Python's json module accepts NaN, Infinity and 1e400 (as inf), which are not JSON and which no clinical
value can be; and a body nested thousands deep costs recursion before any validation runs. Each is refused
here, for every JSON body, with a message that names the problem. (NUL and other control characters are
refused by the fields that hold text, so the answer names the field.)
"""

from __future__ import annotations

import codecs
import json
from itertools import accumulate, repeat

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32


def _refuse_constant(name):
    raise ValueError(_("%(value)s is not a JSON number.") % {"value": name})


def _finite_float(text):
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(_("%(value)s is too large a number.") % {"value": text[:20]})
    return value


# Deletes every ASCII character but the brackets (JSON outside its strings is ASCII).
_ONLY_BRACKETS = str.maketrans(dict.fromkeys(chr(code) for code in range(128) if chr(code) not in "[]{}"))
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def nests_deeper_than(text: str, limit: int) -> bool:
    """True when the JSON text nests arrays and objects deeper than `limit` (brackets within strings don't
    count), found without recursion and with str methods rather than a loop over characters in Python.

    Text with no more opening brackets than `limit` (in strings or not) can't nest deeper and is not read
    further. Otherwise the escapes go first (escaped backslashes, then escaped quotes: what is left of a
    string is its two quotes and what lies between), every other piece between quotes is outside the
    strings, and the depth is the highest running sum of the brackets there. Up to the first place where
    the text stops being JSON, that is the parser's depth, so the parser never goes deeper.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    if "\\" in text:
        text = text.replace("\\\\", "").replace('\\"', "")
    outside = "".join(text.split('"')[::2])
    brackets = outside.translate(_ONLY_BRACKETS)  # and any non-ASCII character, which counts 0 below
    return max(accumulate(map(_STEP.get, brackets, repeat(0))), default=0) > limit


def strict_loads(text: str, *, depth: int = MAX_DEPTH):
    """json.loads for standard JSON only, nested at most `depth` deep; ValueError naming the problem otherwise."""
    if nests_deeper_than(text, depth):
        raise ValueError(_("JSON nested deeper than %(depth)s levels.") % {"depth": depth})
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
        except UnicodeDecodeError:
            raise ParseError(_("The body is not valid %(encoding)s.") % {"encoding": encoding}) from None
        try:
            return strict_loads(text)
        except ValueError as error:
            raise ParseError(_("JSON parse error: %(error)s") % {"error": error}) from None

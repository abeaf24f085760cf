"""JSON the record can take: standard JSON only, and not too deep.

Python's json module accepts NaN, Infinity and 1e400 (as inf), which are not JSON and which no clinical
value can be; and a body nested thousands deep costs recursion before any validation runs. Each is refused
here, for every JSON body, with a message that names the problem. (NUL and other control characters are
refused by the fields that hold text, so the answer names the field.)
"""

from __future__ import annotations

import codecs
import json

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


def _depth_before_parsing(text: str) -> int:
    """The deepest nesting of arrays and objects, counted without recursion (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def strict_loads(text: str):
    """json.loads for standard JSON only; ValueError naming the problem otherwise."""
    if _depth_before_parsing(text) > MAX_DEPTH:
        raise ValueError(_("JSON nested deeper than %(depth)s levels.") % {"depth": MAX_DEPTH})
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

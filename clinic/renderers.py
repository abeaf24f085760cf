"""The API's JSON renderer: DRF's output, written by orjson.

Rendering the evaluate endpoint's answer (3–6 KB) with the standard library's encoder cost about as much as
the engine that computed it; orjson writes the same bytes several times faster. What orjson would write
differently goes through DRF's own encoder instead: dates and times (and dataclasses) are handed to it
(DRF's `Z` for UTC, milliseconds), as is anything orjson cannot write itself (lazy translations, decimals);
and whatever orjson refuses (keys that are not text, integers beyond 64 bits, text with lone surrogates,
a type DRF's encoder refuses too) is rendered by DRF's renderer, unchanged, errors included. So is an
indented answer (`Accept: application/json; indent=4`, the browsable API).

Two spellings differ, not the values: a float under 1e-4 is written without an exponent's padding
(`1e-7` where Python writes `1e-07`, `0.00001` for `1e-05`), and a NaN or infinity, which DRF refuses
(a 500), is written as null. No answer of this API carries either: every float it returns was read by the
strict parser (clinic.parsers: no NaN or infinity) or checked against a plausible range.
"""

import orjson
from rest_framework.renderers import JSONRenderer

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
# U+2028 and U+2029 are escaped, as DRF does, so the answer is also valid JavaScript.
_LINE_SEPARATOR, _PARAGRAPH_SEPARATOR = "\u2028".encode(), "\u2029".encode()


class FastJSONRenderer(JSONRenderer):
    """DRF's JSONRenderer (compact, UTF-8, strict), written by orjson when that gives the same bytes."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None or not self.compact or self.ensure_ascii or not self.strict:
            return super().render(data, accepted_media_type, renderer_context)
        if self.get_indent(accepted_media_type, renderer_context or {}) is not None:
            return super().render(data, accepted_media_type, renderer_context)
        try:
            rendered = orjson.dumps(data, default=self.encoder_class().default, option=_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError: DRF's renderer says what it says about such data
            return super().render(data, accepted_media_type, renderer_context)
        if _LINE_SEPARATOR in rendered or _PARAGRAPH_SEPARATOR in rendered:
            rendered = rendered.replace(_LINE_SEPARATOR, b"\\u2028").replace(_PARAGRAPH_SEPARATOR, b"\\u2029")
        return rendered

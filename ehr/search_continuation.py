"""The terms of a FHIR search sent by POST, sealed into the page links of its Bundle.

An EHR posts `<type>/_search` so that a patient's name, birth date or SNILS stay out of URLs, which proxies,
browsers and logs keep. The Bundle's self, next and previous links are URLs the client follows with GET, so
they cannot repeat those terms: they carry `_getpages=<token>` instead, the terms encrypted and authenticated
(Fernet, with a key derived from the project's secret key), bound to the clinic and the resource type, and
good for an hour. Nothing is stored on the server, so nothing sensitive waits in a cache.
"""

from __future__ import annotations

import base64
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

PARAM = "_getpages"
LIFETIME_SECONDS = 60 * 60


class Refused(ValueError):
    """Not a token of this server for this search."""


class Expired(ValueError):
    """A token of this server whose hour is over."""


def _fernet(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"fhir-search-continuation").derive(
        secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def _keys() -> MultiFernet:
    # The secret key first, then the ones being rotated out: a link handed out before a rotation still works.
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet(secret) for secret in secrets])


def seal(*, clinic_id: int, resource_type: str, criteria: dict[str, str], now: int) -> str:
    """A token for `criteria`, issued at `now` (seconds since the epoch)."""
    payload = json.dumps({"c": clinic_id, "t": resource_type, "q": criteria}, ensure_ascii=False, separators=(",", ":"))
    return _keys().encrypt_at_time(payload.encode(), now).decode("ascii")


def unseal(token: str, *, clinic_id: int, resource_type: str, now: int) -> dict[str, str]:
    """The criteria sealed in `token`, if it was made for this clinic and resource type less than an hour before
    `now` (seconds since the epoch). Another clinic's token is refused like a forged one: it says nothing of it."""
    keys = _keys()
    try:
        issued = keys.extract_timestamp(token)
        payload = json.loads(keys.decrypt(token))
    except (InvalidToken, ValueError, TypeError):
        raise Refused(token) from None
    if not isinstance(payload, dict) or payload.get("c") != clinic_id or payload.get("t") != resource_type:
        raise Refused(token)
    criteria = payload.get("q")
    if not isinstance(criteria, dict) or not all(isinstance(v, str) for v in criteria.values()):
        raise Refused(token)
    if now - issued > LIFETIME_SECONDS:
        raise Expired(token)
    return criteria

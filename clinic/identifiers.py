"""Russian identifiers on the record: SNILS, the single-format OMS policy number, OGRN, and the
clinic's time zone. Each validator raises a ValidationError a GP can act on; each normaliser keeps
the digits only, so "112-233-445 95" and "11223344595" are the same SNILS."""

from __future__ import annotations

import re
import zoneinfo

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.ru import ogrn as stdnum_ogrn

_SEPARATORS = re.compile(r"[\s\-]")


def digits_only(value: str) -> str:
    return _SEPARATORS.sub("", value or "")


def snils_check_digits(number: str) -> int:
    """The control number of a SNILS's first nine digits (Pension Fund rules: weights 9..1, mod 101)."""
    total = sum(int(digit) * weight for digit, weight in zip(number[:9], range(9, 0, -1), strict=True))
    if total < 100:
        return total
    if total in (100, 101):
        return 0
    remainder = total % 101
    return 0 if remainder == 100 else remainder


def validate_snils(value: str) -> None:
    number = digits_only(value)
    if not number:
        return
    if not number.isdigit() or len(number) != 11:
        raise ValidationError(_("A SNILS has 11 digits, e.g. 112-233-445 95."), code="snils_format")
    # Numbers up to 001-001-998 were issued before the control number existed.
    if int(number[:9]) > 1001998 and snils_check_digits(number[:9]) != int(number[9:]):
        raise ValidationError(_("This SNILS fails its checksum: check the digits."), code="snils_checksum")


def format_snils(value: str) -> str:
    number = digits_only(value)
    if len(number) != 11:
        return value
    return f"{number[0:3]}-{number[3:6]}-{number[6:9]} {number[9:11]}"


def validate_oms_policy(value: str) -> None:
    number = digits_only(value)
    if number and (not number.isdigit() or len(number) != 16):
        raise ValidationError(_("A single-format OMS policy number has 16 digits."), code="oms_format")


def validate_ogrn(value: str) -> None:
    number = digits_only(value)
    if not number:
        return
    if len(number) != 13:
        raise ValidationError(_("An organisation's OGRN has 13 digits."), code="ogrn_format")
    try:
        stdnum_ogrn.validate(number)
    except StdnumError:
        raise ValidationError(_("This OGRN fails its checksum: check the digits."), code="ogrn_checksum") from None


def validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(_("Unknown time zone %(zone)s."), params={"zone": value}, code="time_zone") from None

"""What an EHR client may be registered with: the FHIR servers the CDS services may read from it.

One check serves the admin (the model field's validator) and `manage.py ehr_client_register`, and one
normalisation serves the CDS service's comparison of a call's `fhirServer` with what was registered.
"""

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext_lazy as _

DEFAULT_PORTS = {"https": 443, "http": 80}


def validate_fhir_base(url) -> None:
    """A FHIR server base a CDS call may name: an https URL without a query, a fragment or a user name
    (the server is known by its address alone; credentials travel in `fhirAuthorization`)."""
    if not isinstance(url, str) or not url:
        raise ValidationError(_("A FHIR server base must be a URL."), code="invalid")
    try:
        URLValidator(schemes=["https"])(url)
    except ValidationError:
        raise ValidationError(
            _("%(url)s is not an https URL: a FHIR server base must start with https://."),
            code="not_https",
            params={"url": url},
        ) from None
    parts = urlsplit(url)
    if "?" in url or "#" in url:
        raise ValidationError(
            _("%(url)s has a query or a fragment: give the server's base URL alone."),
            code="query",
            params={"url": url},
        )
    if "@" in parts.netloc:
        raise ValidationError(
            _("%(url)s carries a user name or password: give the server's base URL alone."),
            code="userinfo",
            params={"url": url},
        )


@deconstructible
class FhirServerList:
    """The model field's validator: a JSON list of FHIR server bases, each as `validate_fhir_base` wants."""

    def __call__(self, value):
        if not isinstance(value, list):
            raise ValidationError(_("Enter a JSON list of FHIR server base URLs."), code="not_a_list")
        for url in value:
            validate_fhir_base(url)

    def __eq__(self, other):
        return isinstance(other, FhirServerList)


def fhir_base_key(url) -> str | None:
    """The URL as the registered bases are compared: scheme and host in lower case, the default port
    dropped, trailing slashes ignored; None for what no registered base can equal (not a URL, a query, a
    fragment or a user name)."""
    if not isinstance(url, str) or len(url) > 2000:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if not host or scheme not in DEFAULT_PORTS or "@" in parts.netloc or "?" in url or "#" in url:
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def registered_fhir_server(url, registered) -> bool:
    """Whether the FHIR server a CDS call names is one of the bases registered for its EHR."""
    key = fhir_base_key(url)
    return key is not None and any(fhir_base_key(base) == key for base in registered or [])

"""HTML to PDF bytes, with WeasyPrint, reaching nothing but the app's own static files.

Documents are rendered against a fixed, unroutable origin: `{% static %}`-style links
(`/static/...`) resolve to it and are served from the static files (fonts, CSS, logo);
every other URL (file:, http(s):, data:, anything else) is refused, so hostile text in a
record can neither read the server's files nor make the renderer call out.
"""

from __future__ import annotations

import logging
import mimetypes
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.exceptions import SuspiciousFileOperation
from django.template.loader import render_to_string
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

logger = logging.getLogger(__name__)

ORIGIN = "https://documents.invalid"
STATIC_PREFIX = f"{ORIGIN}/static/"


class RefusedURL(ValueError):
    """The renderer asked for something outside the app's static files."""


def _static_file(name: str) -> Path | None:
    try:
        found = finders.find(name)
    except SuspiciousFileOperation:
        return None
    if found:
        return Path(found)
    root = Path(settings.STATIC_ROOT).resolve()
    candidate = (root / name).resolve()
    if candidate.is_file() and root in candidate.parents:
        return candidate
    return None


class StaticOnlyFetcher(URLFetcher):
    """Serves `https://documents.invalid/static/<name>` from the static files; refuses the rest."""

    def __init__(self):
        super().__init__(allowed_protocols={"https"}, allow_redirects=False, timeout=1)
        self.refused: list[str] = []

    def fetch(self, url, headers=None):
        parts = urlsplit(url)
        if not url.startswith(STATIC_PREFIX) or parts.query:
            return self._refuse(url)
        name = unquote(parts.path[len("/static/") :])
        if not name or name.startswith("/") or "\\" in name or ".." in Path(name).parts:
            return self._refuse(url)
        path = _static_file(name)
        if path is None:
            return self._refuse(url)
        mime_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(url, body=path.read_bytes(), headers={"Content-Type": mime_type})

    def _refuse(self, url):
        # Only the scheme goes to the log: a URL written into a record may itself carry patient data.
        scheme = urlsplit(url).scheme or "relative"
        self.refused.append(scheme)
        logger.warning("document renderer refused a %s: URL", scheme)
        raise RefusedURL(f"refused a {scheme}: URL")


# Bidirectional embedding, override and isolate controls (and the invisible marks): typed into a name, a
# right-to-left override turns the rest of the line around on paper. A printed document has no use for them.
BIDI_CONTROLS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def html_to_pdf(html: str, *, fetcher: StaticOnlyFetcher | None = None) -> bytes:
    """The one place HTML becomes PDF bytes. Pages, margins, headers and numbers come from CSS @page."""
    html = BIDI_CONTROLS.sub("", html)
    return HTML(string=html, base_url=f"{ORIGIN}/", url_fetcher=fetcher or StaticOnlyFetcher()).write_pdf()


def render_pdf(template: str, context: dict, *, fetcher: StaticOnlyFetcher | None = None) -> bytes:
    return html_to_pdf(render_to_string(template, context), fetcher=fetcher)

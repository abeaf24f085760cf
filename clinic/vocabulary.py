"""The engine's knowledge base in the language of the request (or of the document being rendered).

The record speaks the engine's vocabulary (finding codes, their names, red flags), and the engine is the
layer below it, so the record reads it here, straight from workups.engine. The engine knows nothing of
Django; this is where the active Django language picks which of its texts a page, an API answer or a PDF
shows. Codes and clinical answers are the same in every language.
"""

from django.utils import translation

from workups.engine import KnowledgeBase, get_knowledge_base
from workups.engine.loader import DEFAULT_LANGUAGE, LANGUAGES


def kb_language(language: str | None = None) -> str:
    code = (language or translation.get_language() or DEFAULT_LANGUAGE).split("-")[0]
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


def current_kb(language: str | None = None) -> KnowledgeBase:
    return get_knowledge_base(kb_language(language))

"""The knowledge base in the language of the request (or of the document being rendered).

The record reads the engine's vocabulary in clinic.vocabulary (the layer below the workups); the layers
above it use the same two functions from here.
"""

from clinic.vocabulary import current_kb, kb_language

__all__ = ["current_kb", "kb_language"]

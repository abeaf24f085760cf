"""The engine's one exception, in a module of its own: the loader raises it and so does the condition
compiler, which the loader imports (the compiler importing the loader back made a circle)."""


class KnowledgeBaseError(Exception):
    """The knowledge base on disk is not valid; the message names where."""

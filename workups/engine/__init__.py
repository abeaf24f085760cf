"""The clinical knowledge base and its pure evaluator.

`load_knowledge_base()` reads and validates the YAML under workups/knowledge;
`evaluate(kb, case)` turns a Case into a workup dict. Neither touches the
database, the clock or anything outside its arguments.
"""

from workups.engine.case import Case
from workups.engine.errors import KnowledgeBaseError
from workups.engine.evaluate import evaluate, order_check, why_not_indicated
from workups.engine.loader import KnowledgeBase, get_knowledge_base, load_knowledge_base

__all__ = [
    "Case",
    "KnowledgeBase",
    "KnowledgeBaseError",
    "evaluate",
    "get_knowledge_base",
    "load_knowledge_base",
    "order_check",
    "why_not_indicated",
]

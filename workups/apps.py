from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WorkupsConfig(AppConfig):
    name = "workups"
    verbose_name = _("Workups")

    def ready(self):
        # Load (and so validate) the knowledge base at start-up: a broken rule file
        # must stop the app here, naming the rule, not fail while a patient is seen.
        from workups.engine import get_knowledge_base
        from workups.engine.loader import LANGUAGES

        for language in LANGUAGES:
            get_knowledge_base(language)

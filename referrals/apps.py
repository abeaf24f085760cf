from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReferralsConfig(AppConfig):
    name = "referrals"
    verbose_name = _("Referrals and letters")

    def ready(self):
        # Registers the referrals' Celery tasks, which the services look up by name (referrals.dispatch).
        from referrals import tasks  # noqa: F401

        # The workup page shows the encounter's letters and documents: the letters add them to it (the
        # workups, a layer below, must not import the letters).
        from referrals.selectors import workup_page_documents
        from workups.web import WORKUP_PAGE_SECTIONS

        if workup_page_documents not in WORKUP_PAGE_SECTIONS:
            WORKUP_PAGE_SECTIONS.append(workup_page_documents)

        # A letter issued from a recommended referral holds its decision: the letters say so before one changes.
        from referrals.services import decision_held_check
        from workups.services import DECISION_GUARDS

        if decision_held_check not in DECISION_GUARDS:
            DECISION_GUARDS.append(decision_held_check)

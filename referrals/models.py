from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from clinic.models import Clinic, Encounter
from clinic.vocabulary import current_kb


class PdfStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    RENDERING = "rendering", _("Rendering")
    READY = "ready", _("Ready")
    FAILED = "failed", _("Failed")


class RenderedDocument(models.Model):
    """A PDF rendered by a Celery worker: its state, and the claim that keeps it rendered once."""

    pdf_status = models.CharField(_("pdf status"), max_length=10, choices=PdfStatus.choices, default=PdfStatus.PENDING)
    pdf_error = models.TextField(_("pdf error"), blank=True)
    pdf_file = models.FileField(_("pdf file"), upload_to="documents/%Y/%m/", blank=True)
    # Bumped whenever the content changes: a render of an older generation is thrown away.
    pdf_generation = models.PositiveIntegerField(_("pdf generation"), default=1)
    pdf_enqueued_at = models.DateTimeField(_("pdf enqueued at"), null=True, blank=True)
    pdf_claimed_by = models.CharField(_("pdf claimed by"), max_length=200, blank=True)
    pdf_claimed_at = models.DateTimeField(_("pdf claimed at"), null=True, blank=True)
    pdf_rendered_at = models.DateTimeField(_("pdf rendered at"), null=True, blank=True)
    pdf_renders = models.PositiveIntegerField(
        _("pdf renders"), default=0, help_text=_("Completed renders, for the record.")
    )

    class Meta:
        abstract = True


class ReferralStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    ISSUED = "issued", _("Issued")
    BOOKED = "booked", _("Booked")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")
    DECLINED_BY_PATIENT = "declined_by_patient", _("Declined by the patient")


# Still awaiting the specialist's answer (GUIDANCE 7: open until the conclusion is recorded).
OPEN_REFERRAL_STATUSES = (ReferralStatus.ISSUED, ReferralStatus.BOOKED)


class DocumentLanguage(models.TextChoices):
    RUSSIAN = "ru", "Русский"
    ENGLISH = "en", "English"


class Referral(RenderedDocument):
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="referrals", verbose_name=_("clinic"))
    encounter = models.ForeignKey(
        Encounter, on_delete=models.PROTECT, related_name="referrals", verbose_name=_("encounter")
    )
    recommendation = models.ForeignKey(
        "workups.WorkupReferral",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="letters",
        verbose_name=_("recommendation"),
    )
    specialty = models.CharField(_("specialty"), max_length=40)
    urgency = models.CharField(_("urgency"), max_length=10)
    reason = models.TextField(_("reason"))
    question = models.TextField(_("question"), blank=True, help_text=_("The clinical question for the specialist."))
    # The letter's language: Russian gives form 057/у, English the English letter. Default: the clinic's.
    language = models.CharField(
        _("language"), max_length=2, choices=DocumentLanguage.choices, default=DocumentLanguage.RUSSIAN
    )
    # The provisional diagnosis: a WHO ICD-10 code, pre-filled from the rule that suspects it, and in words.
    icd10 = models.CharField(_("icd10"), max_length=8, blank=True)
    diagnosis = models.CharField(_("diagnosis"), max_length=300, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=ReferralStatus.choices, default=ReferralStatus.DRAFT)
    issued_at = models.DateTimeField(_("issued at"), null=True, blank=True)
    # The loop after issue (the latest of each; ReferralEvent keeps every change).
    appointment_at = models.DateTimeField(_("appointment at"), null=True, blank=True)
    conclusion = models.TextField(
        _("conclusion"), blank=True, help_text=_("The specialist's conclusion, as recorded by the GP.")
    )
    conclusion_pdf = models.FileField(_("conclusion pdf"), upload_to="conclusions/%Y/%m/", blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    close_reason = models.TextField(_("close reason"), blank=True)
    # When the periodic task found it open past its due date.
    overdue_at = models.DateTimeField(_("overdue at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("created by")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["pdf_status", "pdf_enqueued_at"], name="referral_pdf_sweep"),
            # The worklist's open referrals (and the badge's count): the open rows only, with what places them, so
            # that the closed referrals of the years before are never read.
            models.Index(
                fields=["clinic"],
                include=["issued_at", "created_at", "urgency"],
                condition=models.Q(status__in=OPEN_REFERRAL_STATUSES),
                name="referral_open",
            ),
        ]

    def __str__(self):
        specialty = current_kb().vocabulary.specialties.get(self.specialty, self.specialty)
        return _("Referral %(number)s (%(specialty)s)") % {"number": self.pk, "specialty": specialty}


class ReferralEvent(models.Model):
    """One change of a referral's status after it was written: the loop's history, append-only."""

    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="events", verbose_name=_("referral"))
    status = models.CharField(_("status"), max_length=20, choices=ReferralStatus.choices)
    at = models.DateTimeField(_("at"))
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("by"))
    appointment_at = models.DateTimeField(_("appointment at"), null=True, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    conclusion = models.TextField(_("conclusion"), blank=True)
    conclusion_pdf = models.CharField(
        _("conclusion pdf"), max_length=300, blank=True, help_text=_("The stored file's name, if one came.")
    )

    class Meta:
        verbose_name = _("referral event")
        verbose_name_plural = _("referral events")
        ordering = ["at", "id"]

    def __str__(self):
        return _("Referral %(number)s: %(status)s, %(at)s") % {
            "number": self.referral_id,
            "status": self.status,
            "at": self.at,
        }


class EncounterDocument(RenderedDocument):
    """A document of a whole encounter's accepted workup (requisition, leaflet): its clinic, encounter and
    workup (reverse names `requisitions`, `leaflets`), its language and who asked for it."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="%(class)ss", verbose_name=_("clinic"))
    encounter = models.ForeignKey(
        Encounter, on_delete=models.PROTECT, related_name="%(class)ss", verbose_name=_("encounter")
    )
    workup = models.ForeignKey(
        "workups.Workup", on_delete=models.PROTECT, related_name="%(class)ss", verbose_name=_("workup")
    )
    language = models.CharField(
        _("language"), max_length=2, choices=DocumentLanguage.choices, default=DocumentLanguage.RUSSIAN
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("created by")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]


class Requisition(EncounterDocument):
    """The lab and imaging requisition of an encounter: its accepted tests, as they were when requested."""

    class Meta(EncounterDocument.Meta):
        verbose_name = _("requisition")
        verbose_name_plural = _("requisitions")
        indexes = [models.Index(fields=["pdf_status", "pdf_enqueued_at"], name="requisition_pdf_sweep")]

    def __str__(self):
        return _("Requisition %(number)s of encounter %(encounter)s") % {
            "number": self.pk,
            "encounter": self.encounter_id,
        }


class Leaflet(EncounterDocument):
    """The patient leaflet (Памятка пациенту) of an encounter: how to prepare for each accepted test,
    where to go and by when, and the warning signs that mean calling an ambulance."""

    class Meta(EncounterDocument.Meta):
        verbose_name = _("patient leaflet")
        verbose_name_plural = _("patient leaflets")
        indexes = [models.Index(fields=["pdf_status", "pdf_enqueued_at"], name="leaflet_pdf_sweep")]

    def __str__(self):
        return _("Patient leaflet %(number)s of encounter %(encounter)s") % {
            "number": self.pk,
            "encounter": self.encounter_id,
        }

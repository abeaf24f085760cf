from django.conf import settings
from django.db import models

from clinic.models import Clinic, Encounter


class PdfStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RENDERING = "rendering", "Rendering"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class RenderedDocument(models.Model):
    """A PDF rendered by a Celery worker: its state, and the claim that keeps it rendered once."""

    pdf_status = models.CharField(max_length=10, choices=PdfStatus.choices, default=PdfStatus.PENDING)
    pdf_error = models.TextField(blank=True)
    pdf_file = models.FileField(upload_to="documents/%Y/%m/", blank=True)
    # Bumped whenever the content changes: a render of an older generation is thrown away.
    pdf_generation = models.PositiveIntegerField(default=1)
    pdf_enqueued_at = models.DateTimeField(null=True, blank=True)
    pdf_claimed_by = models.CharField(max_length=200, blank=True)
    pdf_claimed_at = models.DateTimeField(null=True, blank=True)
    pdf_rendered_at = models.DateTimeField(null=True, blank=True)
    pdf_renders = models.PositiveIntegerField(default=0, help_text="Completed renders, for the record.")

    class Meta:
        abstract = True


class ReferralStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ISSUED = "issued", "Issued"
    BOOKED = "booked", "Booked"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    DECLINED_BY_PATIENT = "declined_by_patient", "Declined by the patient"


# Still awaiting the specialist's answer (GUIDANCE 7: open until the conclusion is recorded).
OPEN_REFERRAL_STATUSES = (ReferralStatus.ISSUED, ReferralStatus.BOOKED)


class DocumentLanguage(models.TextChoices):
    RUSSIAN = "ru", "Русский"
    ENGLISH = "en", "English"


class Referral(RenderedDocument):
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="referrals")
    encounter = models.ForeignKey(Encounter, on_delete=models.PROTECT, related_name="referrals")
    recommendation = models.ForeignKey(
        "workups.WorkupReferral", on_delete=models.SET_NULL, null=True, blank=True, related_name="letters"
    )
    specialty = models.CharField(max_length=40)
    urgency = models.CharField(max_length=10)
    reason = models.TextField()
    question = models.TextField(blank=True, help_text="The clinical question for the specialist.")
    # The letter's language: Russian gives form 057/у, English the English letter. Default: the clinic's.
    language = models.CharField(max_length=2, choices=DocumentLanguage.choices, default=DocumentLanguage.RUSSIAN)
    # The provisional diagnosis: a WHO ICD-10 code, pre-filled from the rule that suspects it, and in words.
    icd10 = models.CharField(max_length=8, blank=True)
    diagnosis = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=20, choices=ReferralStatus.choices, default=ReferralStatus.DRAFT)
    issued_at = models.DateTimeField(null=True, blank=True)
    # The loop after issue (the latest of each; ReferralEvent keeps every change).
    appointment_at = models.DateTimeField(null=True, blank=True)
    conclusion = models.TextField(blank=True, help_text="The specialist's conclusion, as recorded by the GP.")
    conclusion_pdf = models.FileField(upload_to="conclusions/%Y/%m/", blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.TextField(blank=True)
    # When the periodic task found it open past its due date.
    overdue_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["pdf_status", "pdf_enqueued_at"], name="referral_pdf_sweep")]

    def __str__(self):
        return f"Referral {self.pk} to {self.specialty}"


class ReferralEvent(models.Model):
    """One change of a referral's status after it was written: the loop's history, append-only."""

    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="events")
    status = models.CharField(max_length=20, choices=ReferralStatus.choices)
    at = models.DateTimeField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    appointment_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True)
    conclusion = models.TextField(blank=True)
    conclusion_pdf = models.CharField(max_length=300, blank=True, help_text="The stored file's name, if one came.")

    class Meta:
        ordering = ["at", "id"]

    def __str__(self):
        return f"Referral {self.referral_id}: {self.status} at {self.at}"


class Requisition(RenderedDocument):
    """The lab and imaging requisition of an encounter: its accepted tests, as they were when requested."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="requisitions")
    encounter = models.ForeignKey(Encounter, on_delete=models.PROTECT, related_name="requisitions")
    workup = models.ForeignKey("workups.Workup", on_delete=models.PROTECT, related_name="requisitions")
    language = models.CharField(max_length=2, choices=DocumentLanguage.choices, default=DocumentLanguage.RUSSIAN)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["pdf_status", "pdf_enqueued_at"], name="requisition_pdf_sweep")]

    def __str__(self):
        return f"Requisition {self.pk} for encounter {self.encounter_id}"


class Leaflet(RenderedDocument):
    """The patient leaflet (Памятка пациенту) of an encounter: how to prepare for each accepted test,
    where to go and by when, and the warning signs that mean calling an ambulance."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="leaflets")
    encounter = models.ForeignKey(Encounter, on_delete=models.PROTECT, related_name="leaflets")
    workup = models.ForeignKey("workups.Workup", on_delete=models.PROTECT, related_name="leaflets")
    language = models.CharField(max_length=2, choices=DocumentLanguage.choices, default=DocumentLanguage.RUSSIAN)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["pdf_status", "pdf_enqueued_at"], name="leaflet_pdf_sweep")]

    def __str__(self):
        return f"Leaflet {self.pk} for encounter {self.encounter_id}"

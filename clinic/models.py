from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from clinic.identifiers import validate_ogrn, validate_time_zone


class Language(models.TextChoices):
    RUSSIAN = "ru", "Русский"
    ENGLISH = "en", "English"


class Clinic(models.Model):
    """A practice. Patient data never crosses from one clinic to another."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    # What form 057/у prints at the top: the organisation's full legal name, OGRN and address.
    legal_name = models.CharField(_("full legal name"), max_length=300, blank=True)
    ogrn = models.CharField(_("OGRN"), max_length=13, blank=True, validators=[validate_ogrn])
    address = models.CharField(_("address"), max_length=300, blank=True)
    phone = models.CharField(_("phone"), max_length=50, blank=True)
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="Europe/Moscow", validators=[validate_time_zone]
    )
    language = models.CharField(_("default language"), max_length=2, choices=Language.choices, default=Language.RUSSIAN)
    # Working days an accepted test or an issued referral may take, by urgency (GUIDANCE 7).
    due_emergency_days = models.PositiveSmallIntegerField(_("emergency: due within, working days"), default=0)
    due_urgent_days = models.PositiveSmallIntegerField(_("urgent: due within, working days"), default=3)
    due_routine_days = models.PositiveSmallIntegerField(_("routine: due within, working days"), default=14)
    # Every GP of the clinic logs in with a code from an authenticator app too (clinic.two_factor).
    two_factor_required = models.BooleanField(
        _("two-step login required"),
        default=False,
        help_text=_("Every GP of the clinic enters a code from an authenticator app after the password."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("clinic")
        verbose_name_plural = _("clinics")
        ordering = ["name"]

    def __str__(self):
        return self.name


class ClinicHoliday(models.Model):
    """A day the clinic does not count as a working day for due dates (public holidays, closures)."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="holidays", verbose_name=_("clinic"))
    date = models.DateField(_("date"))
    name = models.CharField(_("name"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("clinic holiday")
        verbose_name_plural = _("clinic holidays")
        ordering = ["date"]
        constraints = [models.UniqueConstraint(fields=["clinic", "date"], name="clinic_holiday_once")]

    def __str__(self):
        return f"{self.date} {self.name}".strip()


class Membership(models.Model):
    """A clinician's place in a clinic: each GP belongs to exactly one."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership", verbose_name=_("user")
    )
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="memberships", verbose_name=_("clinic"))
    title = models.CharField(_("title"), max_length=100, default="General practitioner")
    # As printed on documents: "Петрова Анна Сергеевна", "врач-терапевт участковый".
    full_name = models.CharField(_("full name"), max_length=300, blank=True)
    position = models.CharField(_("position"), max_length=200, blank=True)
    # Blank: follow the browser (Accept-Language), then the clinic's default.
    language = models.CharField(_("language"), max_length=2, choices=Language.choices, blank=True)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")

    def __str__(self):
        return f"{self.user} @ {self.clinic}"

    @property
    def display_name(self):
        return self.full_name or self.user.get_full_name() or self.user.get_username()

    @property
    def display_position(self):
        return self.position or self.title


class Sex(models.TextChoices):
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")


class Patient(models.Model):
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="patients", verbose_name=_("clinic"))
    given_name = models.CharField(_("given name"), max_length=150)
    family_name = models.CharField(_("family name"), max_length=150)
    # Отчество: optional (English patients have none), printed on Russian documents.
    middle_name = models.CharField(_("patronymic"), max_length=150, blank=True)
    birth_date = models.DateField(_("date of birth"))
    sex = models.CharField(_("sex"), max_length=6, choices=Sex.choices)
    identifier = models.CharField(
        _("identifier"), max_length=64, blank=True, help_text=_("Medical record number or another identifier.")
    )
    # The namespace of `identifier` when it came from another system (an EHR); blank for the clinic's own.
    identifier_system = models.CharField(_("identifier system"), max_length=255, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    address = models.CharField(
        _("registration address"), max_length=300, blank=True, help_text=_("Registration address.")
    )
    snils = models.CharField(
        _("SNILS"), max_length=11, blank=True, help_text=_("SNILS, 11 digits (checksum validated).")
    )
    oms_policy = models.CharField(
        _("OMS policy"), max_length=16, blank=True, help_text=_("OMS policy number, 16 digits.")
    )
    insurer = models.CharField(_("insurer (SMO)"), max_length=200, blank=True, help_text=_("The OMS insurer (СМО)."))
    # Case-folded "family given" for search in any script: SQLite's LIKE folds ASCII only,
    # so "иван" would not find "Иванова" without it. Kept by clinic.services, indexed (trigram) on PostgreSQL.
    name_search = models.CharField(max_length=470, editable=False, default="")
    # Bumped by every update (clinic.services.patient_update): the FHIR versionId and ETag W/"<version>".
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        ordering = ["family_name", "given_name", "id"]
        indexes = [
            models.Index(fields=["clinic", "family_name", "given_name"], name="patient_clinic_name"),
            models.Index(fields=["clinic", "birth_date"], name="patient_clinic_birth"),
            models.Index(fields=["clinic", "snils"], name="patient_clinic_snils"),
            models.Index(fields=["clinic", "oms_policy"], name="patient_clinic_oms"),
            # The unsearched list, most recently seen first: its first page is read off the index, not sorted.
            models.Index(fields=["clinic", "-updated_at", "-id"], name="patient_clinic_updated"),
            # Beside these, made by migrations: the trigram index of name_search for "contains" (0003, PostgreSQL),
            # and (clinic, name_search in byte order, id) for the search's order and "starts with" (0013).
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "identifier_system", "identifier"],
                condition=~models.Q(identifier=""),
                name="patient_identifier_unique",
            ),
        ]

    def __str__(self):
        return self.full_name

    @property
    def full_name(self):
        return " ".join(part for part in (self.family_name, self.given_name, self.middle_name) if part)

    def age_on(self, day):
        years = day.year - self.birth_date.year
        if (day.month, day.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years


class EncounterStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    FINALIZED = "finalized", _("Finalized")


NOTE_SECTIONS = ("location", "pattern", "symptoms", "red_flags", "history", "examination", "vitals", "plan")


class Encounter(models.Model):
    """One consultation: the history and examination the workup is computed from."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="encounters", verbose_name=_("clinic"))
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="encounters", verbose_name=_("patient"))
    clinician = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="encounters", verbose_name=_("clinician")
    )
    visit_date = models.DateField(_("visit date"))
    chief_complaint = models.TextField(_("chief complaint"), blank=True)
    duration_days = models.PositiveIntegerField(_("duration, days"))
    pregnant = models.BooleanField(_("pregnant"), null=True, blank=True)
    temperature_c = models.FloatField(_("temperature, °C"), null=True, blank=True)
    heart_rate = models.PositiveSmallIntegerField(_("heart rate"), null=True, blank=True)
    systolic_bp = models.PositiveSmallIntegerField(_("systolic blood pressure"), null=True, blank=True)
    diastolic_bp = models.PositiveSmallIntegerField(_("diastolic blood pressure"), null=True, blank=True)
    resp_rate = models.PositiveSmallIntegerField(_("respiratory rate"), null=True, blank=True)
    spo2 = models.PositiveSmallIntegerField(_("SpO2"), null=True, blank=True)
    # Finding code -> True (present) / False (absent); a missing code was not recorded.
    findings = models.JSONField(_("findings"), default=dict, blank=True)
    # Section -> free-text note (NOTE_SECTIONS).
    notes = models.JSONField(_("notes"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=EncounterStatus.choices, default=EncounterStatus.DRAFT
    )
    finalized_at = models.DateTimeField(_("finalized at"), null=True, blank=True)
    finalized_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("finalized by"),
    )
    # Why the GP finalized with emergency work still pending (required then), as they wrote it.
    finalize_reason = models.TextField(_("reason for finalizing"), blank=True)
    # The patient as the encounter saw them, kept when it is finalized.
    patient_sex = models.CharField(_("sex at the visit"), max_length=6, blank=True)
    patient_age = models.PositiveSmallIntegerField(_("age at the visit"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("encounter")
        verbose_name_plural = _("encounters")
        ordering = ["-visit_date", "-id"]
        # A patient's encounters page by page, newest first, in a stable order; counted off the index.
        indexes = [
            models.Index(fields=["patient", "clinic", "-visit_date", "-id"], name="encounter_patient_recent"),
            # The worklist's encounters left as drafts after their visit day, oldest first: drafts only, so it stays
            # small however many encounters are finalized.
            models.Index(
                fields=["clinic", "visit_date", "id"], name="encounter_draft", condition=models.Q(status="draft")
            ),
        ]

    def __str__(self):
        return _("Encounter %(number)s of %(date)s") % {"number": self.pk, "date": self.visit_date}

    @property
    def is_finalized(self):
        return self.status == EncounterStatus.FINALIZED

    @property
    def age(self):
        """Whole years on the visit date; once finalized, as it was then (a later edit of the patient's
        birth date does not rewrite a closed record)."""
        if self.is_finalized and self.patient_age is not None:
            return self.patient_age
        return self.patient.age_on(self.visit_date)

    @property
    def sex(self):
        if self.is_finalized and self.patient_sex:
            return self.patient_sex
        return self.patient.sex


class AuditEvent(models.Model):
    """Who did what to which patient's data, when and from where. Append-only.

    The patient is kept as a plain id (no foreign key) so the trail outlives any record.
    """

    at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+", verbose_name=_("actor")
    )
    actor_username = models.CharField(_("user name"), max_length=150)
    clinic_id = models.BigIntegerField(_("clinic id"), null=True)
    action = models.CharField(_("action"), max_length=32)
    object_type = models.CharField(_("object type"), max_length=32)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    patient_id = models.BigIntegerField(_("patient id"), null=True, db_index=True)
    # For lists and searches: every patient shown.
    patient_ids = models.JSONField(_("patients shown"), default=list, blank=True)
    channel = models.CharField(_("channel"), max_length=8)  # "web" | "api" | "fhir" | "admin"
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    # For a refused request (a probe: 401, 403, another clinic's 404): the method and the URL pattern it
    # matched, "GET /api/v1/patients/<int:pk>/" (the id is object_id), never the path's text or a query string.
    endpoint = models.CharField(_("endpoint"), max_length=255, blank=True, default="")

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_username} {self.action} {self.object_type} {self.object_id}"

from django.conf import settings
from django.db import models


class Clinic(models.Model):
    """A practice. Patient data never crosses from one clinic to another."""

    name = models.CharField(max_length=200, unique=True)
    address = models.CharField(max_length=300, blank=True)
    phone = models.CharField(max_length=50, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Membership(models.Model):
    """A clinician's place in a clinic: each GP belongs to exactly one."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="memberships")
    title = models.CharField(max_length=100, default="General practitioner")

    def __str__(self):
        return f"{self.user} @ {self.clinic}"


class Sex(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"


class Patient(models.Model):
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="patients")
    given_name = models.CharField(max_length=150)
    family_name = models.CharField(max_length=150)
    birth_date = models.DateField()
    sex = models.CharField(max_length=6, choices=Sex.choices)
    identifier = models.CharField(max_length=64, blank=True, help_text="Medical record number or another identifier.")
    # The namespace of `identifier` when it came from an EHR (FHIR Identifier.system); blank for the clinic's own.
    identifier_system = models.CharField(max_length=255, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    # Case-folded "family given" for search in any script: SQLite's LIKE folds ASCII only,
    # so "иван" would not find "Иванова" without it. Kept by clinic.services, indexed (trigram) on PostgreSQL.
    name_search = models.CharField(max_length=310, editable=False, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["family_name", "given_name", "id"]
        indexes = [
            models.Index(fields=["clinic", "family_name", "given_name"], name="patient_clinic_name"),
            models.Index(fields=["clinic", "birth_date"], name="patient_clinic_birth"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "identifier_system", "identifier"], condition=~models.Q(identifier=""),
                name="patient_identifier_unique",
            ),
        ]

    def __str__(self):
        return f"{self.family_name} {self.given_name}"

    @property
    def full_name(self):
        return f"{self.family_name} {self.given_name}"

    def age_on(self, day):
        years = day.year - self.birth_date.year
        if (day.month, day.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years


class EncounterStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    FINALIZED = "finalized", "Finalized"


NOTE_SECTIONS = ("location", "pattern", "symptoms", "red_flags", "history", "examination", "vitals", "plan")


class Encounter(models.Model):
    """One consultation: the history and examination the workup is computed from."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="encounters")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="encounters")
    clinician = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="encounters")
    visit_date = models.DateField()
    chief_complaint = models.TextField(blank=True)
    duration_days = models.PositiveIntegerField()
    pregnant = models.BooleanField(null=True, blank=True)
    temperature_c = models.FloatField(null=True, blank=True)
    heart_rate = models.PositiveSmallIntegerField(null=True, blank=True)
    systolic_bp = models.PositiveSmallIntegerField(null=True, blank=True)
    diastolic_bp = models.PositiveSmallIntegerField(null=True, blank=True)
    resp_rate = models.PositiveSmallIntegerField(null=True, blank=True)
    spo2 = models.PositiveSmallIntegerField(null=True, blank=True)
    # Finding code -> True (present) / False (absent); a missing code was not recorded.
    findings = models.JSONField(default=dict, blank=True)
    # Section -> free-text note (NOTE_SECTIONS).
    notes = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=EncounterStatus.choices, default=EncounterStatus.DRAFT)
    finalized_at = models.DateTimeField(null=True, blank=True)
    finalized_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-visit_date", "-id"]
        indexes = [models.Index(fields=["patient", "-visit_date"], name="encounter_patient_date")]

    def __str__(self):
        return f"Encounter {self.pk} ({self.visit_date})"

    @property
    def is_finalized(self):
        return self.status == EncounterStatus.FINALIZED

    @property
    def age(self):
        return self.patient.age_on(self.visit_date)


class AuditEvent(models.Model):
    """Who did what to which patient's data, when and from where. Append-only.

    The patient is kept as a plain id (no foreign key) so the trail outlives any record.
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    actor_username = models.CharField(max_length=150)
    clinic_id = models.BigIntegerField(null=True)
    action = models.CharField(max_length=32)
    object_type = models.CharField(max_length=32)
    object_id = models.CharField(max_length=64, blank=True)
    patient_id = models.BigIntegerField(null=True, db_index=True)
    # For lists and searches: every patient shown.
    patient_ids = models.JSONField(default=list, blank=True)
    channel = models.CharField(max_length=8)  # "web" | "api"
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_username} {self.action} {self.object_type} {self.object_id}"


class EhrClient(models.Model):
    """An EHR allowed to call the CDS Hooks services for one clinic, registered by staff in the admin.

    Its requests carry a JWT signed with the private key matching `public_key`, issued by `issuer`
    for `client_id` (the `sub` claim), as CDS Hooks 2.0 describes.
    """

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="ehr_clients")
    name = models.CharField(max_length=200)
    issuer = models.CharField(max_length=255, unique=True, help_text="The JWT `iss` claim the EHR signs with.")
    client_id = models.CharField(max_length=255, help_text="The JWT `sub` claim.")
    public_key = models.TextField(help_text="PEM public key (RSA or EC) that verifies the EHR's JWTs.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "EHR client"

    def __str__(self):
        return f"{self.name} ({self.issuer})"

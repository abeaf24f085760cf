from django.conf import settings
from django.db import models

from clinic.models import Encounter


class Decision(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"


class Urgency(models.TextChoices):
    EMERGENCY = "emergency", "Emergency"
    URGENT = "urgent", "Urgent"
    ROUTINE = "routine", "Routine"


class Workup(models.Model):
    """One generation of the workup for an encounter, exactly as the engine answered."""

    encounter = models.ForeignKey(Encounter, on_delete=models.PROTECT, related_name="workups")
    knowledge_base_version = models.CharField(max_length=32)
    disposition = models.CharField(max_length=10)
    # The engine's input (so a later change to the encounter shows this workup is out of date) and its answer.
    case = models.JSONField()
    result = models.JSONField()
    # The same answer with the knowledge base's texts in each other language ({"ru": {...}}), so a
    # workup reads the same in Russian and English whenever it is looked at, whatever the base is by then.
    translations = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        get_latest_by = ["created_at", "id"]

    def __str__(self):
        return f"Workup {self.pk} for encounter {self.encounter_id}"


class Recommendation(models.Model):
    """What an item and a referral share: urgency, why, and the GP's decision."""

    urgency = models.CharField(max_length=10, choices=Urgency.choices)
    triggered_by = models.JSONField(default=list, blank=True)
    sources = models.JSONField(default=list, blank=True)
    rules = models.JSONField(default=list, blank=True)
    added_by_clinician = models.BooleanField(default=False)
    decision = models.CharField(max_length=10, choices=Decision.choices, default=Decision.PENDING)
    decision_reason = models.TextField(blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        abstract = True
        ordering = ["position", "id"]


class WorkupItem(Recommendation):
    workup = models.ForeignKey(Workup, on_delete=models.CASCADE, related_name="items")
    code = models.CharField(max_length=40)
    category = models.CharField(max_length=12)
    rationale = models.TextField(blank=True)

    class Meta(Recommendation.Meta):
        constraints = [models.UniqueConstraint(fields=["workup", "code"], name="workup_item_once")]

    def __str__(self):
        return self.code


class WorkupReferral(Recommendation):
    workup = models.ForeignKey(Workup, on_delete=models.CASCADE, related_name="referrals")
    specialty = models.CharField(max_length=40)
    reason = models.TextField(blank=True)

    class Meta(Recommendation.Meta):
        constraints = [models.UniqueConstraint(fields=["workup", "specialty"], name="workup_referral_once")]

    def __str__(self):
        return self.specialty

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

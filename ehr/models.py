"""The EHRs a clinic lets in: registration of CDS Hooks clients."""
from django.db import models
from django.utils.translation import gettext_lazy as _


class EhrClient(models.Model):
    """An EHR allowed to call the CDS Hooks services for one clinic, registered by staff in the admin.

    Its requests carry a JWT signed with the private key matching `public_key`, issued by `issuer`
    for `client_id` (the `sub` claim), as CDS Hooks 2.0 describes.
    """

    clinic = models.ForeignKey("clinic.Clinic", on_delete=models.PROTECT, related_name="ehr_clients", verbose_name=_("clinic"))
    name = models.CharField(_("name"), max_length=200)
    issuer = models.CharField(_("issuer"), max_length=255, unique=True, help_text=_("The JWT `iss` claim the EHR signs with."))
    client_id = models.CharField(_("client id"), max_length=255, help_text=_("The JWT `sub` claim."))
    public_key = models.TextField(_("public key"), help_text=_("PEM public key (RSA or EC) that verifies the EHR's JWTs."))
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        # The table it had when it lived in the clinic app: moving the code moved no data.
        db_table = "clinic_ehrclient"
        verbose_name = _("EHR client")
        verbose_name_plural = _("EHR clients")

    def __str__(self):
        return f"{self.name} ({self.issuer})"

"""The EHRs a clinic lets in (CDS Hooks clients), the tokens they have used, the cards issued to them
and what their users did with those cards, and the SMART Backend Services access tokens issued to them."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ehr.validators import FhirServerList


class EhrClient(models.Model):
    """An EHR allowed to call the CDS Hooks services for one clinic, registered by staff in the admin or
    with `manage.py ehr_client_register`.

    Its requests carry a JWT issued by `issuer` and signed with a key the service finds by the token's
    `kid`: in the JWKS at `jwks_url`, or at the token's `jku` when that URL is on `jku_allowlist`, or
    (without a key set) the PEM `public_key`, as CDS Hooks 2.0 describes. The services read a call's
    `fhirServer` only when it is one of `fhir_servers`: the EHR cannot make the app fetch another address.
    """

    clinic = models.ForeignKey(
        "clinic.Clinic", on_delete=models.PROTECT, related_name="ehr_clients", verbose_name=_("clinic")
    )
    name = models.CharField(_("name"), max_length=200)
    issuer = models.CharField(
        _("issuer"), max_length=255, unique=True, help_text=_("The JWT `iss` claim the EHR signs with.")
    )
    client_id = models.CharField(
        _("client id"),
        max_length=255,
        blank=True,
        help_text=_("Optional: when set, a token's `sub` claim, if present, must equal it."),
    )
    public_key = models.TextField(
        _("public key"),
        blank=True,
        help_text=_("PEM public key (RSA or EC) that verifies the EHR's JWTs, if it has no JWKS."),
    )
    jwks_url = models.URLField(
        _("JWKS URL"),
        max_length=500,
        blank=True,
        help_text=_("The EHR's JSON Web Key Set; keys are chosen by `kid`, so they can rotate."),
    )
    jku_allowlist = models.JSONField(
        _("jku allow-list"),
        default=list,
        blank=True,
        help_text=_("JWKS URLs a token may name in its `jku` header (a JSON list)."),
    )
    fhir_servers = models.JSONField(
        _("FHIR servers"),
        default=list,
        blank=True,
        validators=[FhirServerList()],
        help_text=_(
            "The FHIR server base URLs (https) the CDS services may read a call's chart from (a JSON list). "
            "A call naming another fhirServer is read from nowhere."
        ),
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    # SMART Backend Services: the account the EHR acts as on the FHIR server (ehr.smart), made at its first
    # access token: no usable password, a member of the EHR's clinic only.
    service_user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="ehr_client",
        verbose_name=_("service user"),
    )

    class Meta:
        # The table it had when it lived in the clinic app: moving the code moved no data.
        db_table = "clinic_ehrclient"
        verbose_name = _("EHR client")
        verbose_name_plural = _("EHR clients")

    def __str__(self):
        return f"{self.name} ({self.issuer})"


class UsedToken(models.Model):
    """A JWT `jti` already accepted from an issuer, kept until the token expires: replay protection that
    holds across processes and needs no cache."""

    issuer = models.CharField(max_length=255)
    jti = models.CharField(max_length=255)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "jti"], name="ehr_usedtoken_issuer_jti")]

    def __str__(self):
        return f"{self.issuer} {self.jti}"


class IssuedCard(models.Model):
    """A CDS Hooks card the service returned: its uuid, the service and the rule (or disposition) behind
    it, so feedback can be related. No patient data."""

    uuid = models.UUIDField(_("card uuid"), unique=True)
    service = models.CharField(_("service"), max_length=100)
    rule = models.CharField(_("rule"), max_length=150, db_index=True)
    summary = models.CharField(_("summary"), max_length=140)
    # The uuids of the card's suggestions: feedback may accept only these.
    suggestions = models.JSONField(_("suggestion ids"), default=list, blank=True)
    client = models.ForeignKey(
        EhrClient, on_delete=models.CASCADE, related_name="issued_cards", verbose_name=_("EHR client")
    )
    issued_at = models.DateTimeField(_("issued"), auto_now_add=True)

    class Meta:
        verbose_name = _("issued card")
        verbose_name_plural = _("issued cards")

    def __str__(self):
        return f"{self.rule}: {self.summary}"


class CardFeedback(models.Model):
    """CDS Hooks 2.0 feedback on one card: accepted (with the suggestions taken) or overridden (with the
    reason given)."""

    OUTCOMES = [("accepted", _("accepted")), ("overridden", _("overridden"))]

    card = models.ForeignKey(
        IssuedCard, on_delete=models.SET_NULL, null=True, blank=True, related_name="feedback", verbose_name=_("card")
    )
    card_uuid = models.UUIDField(_("card uuid"), db_index=True)
    service = models.CharField(_("service"), max_length=100)
    rule = models.CharField(_("rule"), max_length=150, blank=True, db_index=True)
    outcome = models.CharField(_("outcome"), max_length=20, choices=OUTCOMES)
    accepted_suggestions = models.JSONField(_("accepted suggestions"), default=list, blank=True)
    override_reason_code = models.CharField(_("override reason"), max_length=200, blank=True)
    override_reason_display = models.CharField(_("override reason text"), max_length=500, blank=True)
    override_comment = models.TextField(_("override comment"), blank=True, max_length=2000)
    client = models.ForeignKey(
        EhrClient, on_delete=models.CASCADE, related_name="card_feedback", verbose_name=_("EHR client")
    )
    outcome_at = models.DateTimeField(_("outcome time"))
    received_at = models.DateTimeField(_("received"), auto_now_add=True)

    class Meta:
        verbose_name = _("card feedback")
        verbose_name_plural = _("card feedback")

    def __str__(self):
        return f"{self.rule or self.card_uuid}: {self.outcome}"


class SmartAccessToken(models.Model):
    """A SMART Backend Services access token issued to an EHR (ehr.smart): only its SHA-256 is kept, with
    the scopes granted and when it expires."""

    token_hash = models.CharField(_("token SHA-256"), max_length=64, unique=True)
    client = models.ForeignKey(
        EhrClient, on_delete=models.CASCADE, related_name="smart_tokens", verbose_name=_("EHR client")
    )
    scope = models.TextField(_("scopes"), help_text=_("The granted scopes, separated by spaces."))
    issued_at = models.DateTimeField(_("issued"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"), db_index=True)

    class Meta:
        verbose_name = _("SMART access token")
        verbose_name_plural = _("SMART access tokens")

    def __str__(self):
        return f"{self.client}: {self.scope}"

    @property
    def scopes(self) -> list[str]:
        return self.scope.split()

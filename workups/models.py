from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from clinic.models import Clinic, Encounter


class Decision(models.TextChoices):
    PENDING = "pending", _("Pending")
    ACCEPTED = "accepted", _("Accepted")
    DECLINED = "declined", _("Declined")


class Urgency(models.TextChoices):
    EMERGENCY = "emergency", _("Emergency")
    URGENT = "urgent", _("Urgent")
    ROUTINE = "routine", _("Routine")


class WorkupKind(models.TextChoices):
    INITIAL = "initial", _("Initial")
    FOLLOW_UP = "follow_up", _("Follow-up")


class Workup(models.Model):
    """One generation of the workup for an encounter, exactly as the engine answered.

    `initial`: computed from the history and examination (regenerated while the encounter is a draft
    and changes). `follow_up`: computed from the same findings plus the results entered since
    (GUIDANCE 6); its `case` holds the results it was computed from. Neither is ever rewritten."""

    encounter = models.ForeignKey(
        Encounter, on_delete=models.PROTECT, related_name="workups", verbose_name=_("encounter")
    )
    kind = models.CharField(_("kind"), max_length=10, choices=WorkupKind.choices, default=WorkupKind.INITIAL)
    knowledge_base_version = models.CharField(_("knowledge base version"), max_length=32)
    disposition = models.CharField(_("disposition"), max_length=10)
    # The engine's input (so a later change to the encounter shows this workup is out of date) and its answer.
    case = models.JSONField(_("case"))
    result = models.JSONField(_("result"))
    # The same answer with the knowledge base's texts in each other language ({"ru": {...}}), so a
    # workup reads the same in Russian and English whenever it is looked at, whatever the base is by then.
    translations = models.JSONField(_("translations"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("created by")
    )

    class Meta:
        verbose_name = _("workup")
        verbose_name_plural = _("workups")
        ordering = ["-created_at", "-id"]
        get_latest_by = ["created_at", "id"]

    def __str__(self):
        return _("Workup %(number)s of encounter %(encounter)s") % {"number": self.pk, "encounter": self.encounter_id}

    def emergency_untouched(self) -> bool:
        """An emergency none of whose emergency rows has been decided: finalizing it needs the GP's reason
        (sent by ambulance, refused, ...), so it is never by accident. Uses prefetched rows when there are."""
        emergency_rows = [row for row in (*self.items.all(), *self.referrals.all()) if row.urgency == "emergency"]
        return (
            self.disposition == "emergency"
            and bool(emergency_rows)
            and all(row.decision == "pending" for row in emergency_rows)
        )


class Recommendation(models.Model):
    """What an item and a referral share: urgency, why, and the GP's decision."""

    urgency = models.CharField(_("urgency"), max_length=10, choices=Urgency.choices)
    triggered_by = models.JSONField(_("triggered by"), default=list, blank=True)
    sources = models.JSONField(_("sources"), default=list, blank=True)
    rules = models.JSONField(_("rules"), default=list, blank=True)
    added_by_clinician = models.BooleanField(_("added by clinician"), default=False)
    decision = models.CharField(_("decision"), max_length=10, choices=Decision.choices, default=Decision.PENDING)
    decision_reason = models.TextField(_("decision reason"), blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    # When the GP first accepted it (an order went out, to the EHR too), kept through later decisions and
    # workups: an order taken back is exported as revoked, never made to vanish.
    ordered_at = models.DateTimeField(_("ordered at"), null=True, blank=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    # In a follow-up workup: not in the workup it follows (what the results brought).
    is_new = models.BooleanField(_("is new"), default=False)
    # When the periodic task found it past its due date while still awaited (accepted tests only).
    overdue_at = models.DateTimeField(_("overdue at"), null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["position", "id"]


class WorkupItem(Recommendation):
    workup = models.ForeignKey(Workup, on_delete=models.CASCADE, related_name="items", verbose_name=_("workup"))
    # The encounter's clinic, kept beside the item so that the clinic's awaited tests are one index range.
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+", verbose_name=_("clinic"))
    code = models.CharField(_("code"), max_length=40)
    category = models.CharField(_("category"), max_length=12)
    rationale = models.TextField(_("rationale"), blank=True)
    # Set while the test awaits its result, from when it did (its acceptance, else its workup's creation): accepted,
    # in its encounter's latest workup, answerable by a result code and not answered by a current result. Kept by
    # workups.services (awaiting_refresh) whenever a decision, a workup or a result changes, so that the worklist
    # reads the open rows only and not every test a clinic ever accepted.
    awaiting_since = models.DateTimeField(_("awaiting its result since"), null=True, blank=True)

    class Meta(Recommendation.Meta):
        verbose_name = _("recommended test")
        verbose_name_plural = _("recommended tests")
        constraints = [models.UniqueConstraint(fields=["workup", "code"], name="workup_item_once")]
        indexes = [
            models.Index(
                fields=["clinic", "awaiting_since"],
                include=["urgency"],
                condition=models.Q(awaiting_since__isnull=False),
                name="workup_item_awaiting",
            )
        ]

    def __str__(self):
        return self.code


class WorkupReferral(Recommendation):
    workup = models.ForeignKey(Workup, on_delete=models.CASCADE, related_name="referrals", verbose_name=_("workup"))
    specialty = models.CharField(_("specialty"), max_length=40)
    reason = models.TextField(_("reason"), blank=True)

    class Meta(Recommendation.Meta):
        verbose_name = _("recommended referral")
        verbose_name_plural = _("recommended referrals")
        constraints = [models.UniqueConstraint(fields=["workup", "specialty"], name="workup_referral_once")]

    def __str__(self):
        return self.specialty


class ItemOrder(models.Model):
    """A test the GP ordered in an encounter, as an EHR holds it (a FHIR ServiceRequest). Placed when the GP
    accepts the test; revoked when the GP takes it back (declines it) or a later workup no longer has it. A
    revoked order is final for an EHR, so the test accepted again is a new order, the next `round`, which
    replaces it. Between the two, while the workup asks the GP again (a result raised the test's urgency), the
    order stays open: on hold, not revoked."""

    encounter = models.ForeignKey(
        Encounter, on_delete=models.PROTECT, related_name="item_orders", verbose_name=_("encounter")
    )
    code = models.CharField(_("code"), max_length=40)
    round = models.PositiveSmallIntegerField(_("round"))
    # The row the GP accepted it from: what the order said (its urgency, its why) when it was placed.
    item = models.ForeignKey(
        "WorkupItem", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("item")
    )
    ordered_at = models.DateTimeField(_("ordered at"))
    ordered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("ordered by"),
    )
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_reason = models.TextField(_("reason revoked"), blank=True)

    class Meta:
        verbose_name = _("test order")
        verbose_name_plural = _("test orders")
        ordering = ["encounter", "code", "round"]
        constraints = [
            models.UniqueConstraint(fields=["encounter", "code", "round"], name="item_order_round_once"),
            # At most one open order of a test in an encounter: the next is placed only once this one is revoked.
            models.UniqueConstraint(
                fields=["encounter", "code"], condition=models.Q(revoked_at__isnull=True), name="item_order_open_once"
            ),
        ]

    def __str__(self):
        return f"{self.code} #{self.round}"


ABNORMAL_FLAGS = ("low", "high", "positive", "present")
# What a row the GP added by hand says when no reason was typed: stored so, shown in the reader's language
# (workups.selectors.row_text, referrals.documents).
HAND_ADDED = "Added by the clinician"
# The rationale of a test or referral the GP accepted that the engine no longer recommends once the findings were
# edited: it stays, as the GP's own order, until the GP undoes it (the patient may already be booked for it).
KEPT_ACCEPTED = "Accepted before the findings changed; no longer recommended"


class Result(models.Model):
    """A result that came back for a test the encounter ordered (GUIDANCE 6).

    Entered at any time, also after the encounter is finalized. A new value for the same code supersedes
    the current one (`superseded_at`/`superseded_by`): nothing is deleted, and the current result of a
    code is the one not superseded. Its flag and reference are the engine's interpretation at entry, in
    the knowledge base's default language. An abnormal current result stays unacknowledged until a GP
    signs it off with the action taken."""

    encounter = models.ForeignKey(
        Encounter, on_delete=models.PROTECT, related_name="results", verbose_name=_("encounter")
    )
    # The encounter's clinic, so that the clinic's unacknowledged results are one index range.
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+", verbose_name=_("clinic"))
    code = models.CharField(_("code"), max_length=40)
    value_number = models.FloatField(_("value number"), null=True, blank=True)
    value_bool = models.BooleanField(_("value bool"), null=True, blank=True)
    performed_on = models.DateField(_("performed on"), null=True, blank=True)
    note = models.TextField(_("note"), blank=True)
    flag = models.CharField(_("flag"), max_length=10)
    reference = models.CharField(_("reference"), max_length=200, blank=True)
    # The same reference worded in each other language ({"ru": "≥ 120 г/л"}).
    reference_translations = models.JSONField(_("reference translations"), default=dict, blank=True)
    # The accepted workup item it answers, when the encounter's latest workup has one.
    item = models.ForeignKey(
        WorkupItem, on_delete=models.SET_NULL, null=True, blank=True, related_name="results", verbose_name=_("item")
    )
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("entered by")
    )
    entered_at = models.DateTimeField(_("entered at"))
    superseded_at = models.DateTimeField(_("superseded at"), null=True, blank=True)
    superseded_by = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("superseded by")
    )
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("acknowledged by"),
    )
    acknowledgement_note = models.TextField(_("acknowledgement note"), blank=True)
    # When the periodic task found its acknowledgement past due.
    overdue_at = models.DateTimeField(_("overdue at"), null=True, blank=True)

    class Meta:
        verbose_name = _("result")
        verbose_name_plural = _("results")
        ordering = ["-entered_at", "-id"]
        indexes = [
            models.Index(fields=["encounter", "code"], name="result_encounter_code"),
            # The worklist's unacknowledged abnormal results: open rows only, however many results a clinic has.
            models.Index(
                fields=["clinic", "entered_at"],
                condition=models.Q(superseded_at__isnull=True, acknowledged_at__isnull=True, flag__in=ABNORMAL_FLAGS),
                name="result_unacknowledged",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["encounter", "code"], condition=models.Q(superseded_at__isnull=True), name="result_current_once"
            ),
        ]

    def __str__(self):
        return f"{self.code} = {self.value} ({self.flag})"

    @property
    def value(self):
        return self.value_bool if self.value_bool is not None else self.value_number

    @property
    def abnormal(self) -> bool:
        return self.flag in ABNORMAL_FLAGS

    @property
    def current(self) -> bool:
        return self.superseded_at is None

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None

"""The workup page's forms: the GP's decision on a recommendation, and a test or referral added by hand
from the knowledge base's catalogue (in the request's language)."""

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from workups.localized import current_kb

URGENCY_CHOICES = [
    ("routine", pgettext_lazy("urgency", "Routine")),
    ("urgent", pgettext_lazy("urgency", "Urgent")),
    ("emergency", pgettext_lazy("urgency", "Emergency")),
]


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[("accepted", _("Accept")), ("declined", _("Decline")), ("pending", _("Undo"))], label=_("Decision")
    )
    reason = forms.CharField(required=False, max_length=2000, label=_("Reason to decline"))


class AddItemForm(forms.Form):
    # Shown with visible labels; ids of their own, as both catalogue forms are on the workup page.
    code = forms.ChoiceField(label=_("Test"))
    urgency = forms.ChoiceField(choices=URGENCY_CHOICES, label=_("Urgency"))
    rationale = forms.CharField(
        required=False,
        max_length=2000,
        label=_("Indication"),
        widget=forms.TextInput(attrs={"placeholder": _("Clinical indication")}),
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "add_item_%s")
        super().__init__(*args, **kwargs)
        items = current_kb().vocabulary.items
        self.fields["code"].choices = [(code, meta["name"]) for code, meta in items.items()]


class AddReferralForm(forms.Form):
    specialty = forms.ChoiceField(label=_("Specialty"))
    urgency = forms.ChoiceField(choices=URGENCY_CHOICES, label=_("Urgency"))
    reason = forms.CharField(required=False, max_length=2000, label=_("Reason for referral"))

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "add_referral_%s")
        super().__init__(*args, **kwargs)
        self.fields["specialty"].choices = list(current_kb().vocabulary.specialties.items())

"""The workup page's forms: the GP's decision on a recommendation, and a test or referral added by hand
from the knowledge base's catalogue (in the request's language); and the encounter form's widget renderer."""

import html

from django import forms
from django.forms.renderers import DjangoTemplates
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
        # Nothing chosen until the GP chooses: a stray click must not order the first test of the list.
        self.fields["code"].choices = [
            ("", _("— choose a test —")),
            *((code, meta["name"]) for code, meta in items.items()),
        ]


class AddReferralForm(forms.Form):
    specialty = forms.ChoiceField(label=_("Specialty"))
    urgency = forms.ChoiceField(choices=URGENCY_CHOICES, label=_("Urgency"))
    reason = forms.CharField(required=False, max_length=2000, label=_("Reason for referral"))

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "add_referral_%s")
        super().__init__(*args, **kwargs)
        self.fields["specialty"].choices = [
            ("", _("— choose a specialty —")),
            *current_kb().vocabulary.specialties.items(),
        ]


def escaped(value) -> str:
    """As the template's autoescape: markup already safe kept, anything else through html.escape."""
    return value.__html__() if hasattr(value, "__html__") else html.escape(str(value))


def widget_attributes(attrs: dict) -> str:
    """As django/forms/widgets/attrs.html writes them: True as a bare name, False left out."""
    return "".join(
        f" {name}" if value is True else f' {name}="{escaped(value)}"'
        for name, value in attrs.items()
        if value is not False
    )


class DirectWidgets(DjangoTemplates):
    """Django's form renderer, with its plain text boxes and text areas written directly.

    The encounter form has about 17 of them (the visit date, the complaint, the duration, the vital signs,
    a note per section); each through the template engine costs an include of an include and a loop over
    its attributes, a good part of the form's page. The markup is the one of Django's own templates
    (input.html, attrs.html, textarea.html); any other template (radio buttons, error lists) is rendered
    as usual."""

    INPUTS = frozenset(f"django/forms/widgets/{kind}.html" for kind in ("text", "date", "number"))
    TEXTAREA = "django/forms/widgets/textarea.html"

    def render(self, template_name, context, request=None):
        widget = context.get("widget") if isinstance(context, dict) else None
        if widget is not None and template_name in self.INPUTS:
            value = "" if widget["value"] is None else f' value="{escaped(widget["value"])}"'
            attrs = widget_attributes(widget["attrs"])
            return f'<input type="{escaped(widget["type"])}" name="{escaped(widget["name"])}"{value}{attrs}>'
        if widget is not None and template_name == self.TEXTAREA:
            value = escaped(widget["value"]) if widget["value"] else ""
            attrs = widget_attributes(widget["attrs"])
            return f'<textarea name="{escaped(widget["name"])}"{attrs}>\n{value}</textarea>'
        return super().render(template_name, context, request=request)


# One for every encounter form (the renderer holds no state of a request; its template engine is made once).
ENCOUNTER_FORM_RENDERER = DirectWidgets()

"""The encounter form's yes / no / not-recorded questions, written out directly.

The form asks about 75 findings, each a fieldset of three radio buttons. Rendered through Django's form
widgets, every button is a template of its own (the widget's, its attributes', the label's): 220 template
renders and most of the page's time. The markup here is the one those widgets and the form template wrote
(same attributes in the same order, the same escaping), so the page reads and behaves as before."""

from django import template
from django.utils.safestring import mark_safe
from django.utils.translation import gettext

# Escaped as the template engine does, without django.utils.html's lazy-string wrapper (a third of the
# page's time when called 1,500 times).
from workups.forms import escaped, widget_attributes

register = template.Library()


def _checked_values(value) -> set[str]:
    """What the radio buttons show as chosen: a missing answer is the empty choice, as RadioSelect has it."""
    values = value if isinstance(value, (list, tuple)) else [value]
    return {"" if item is None else str(item) for item in values}


def answer_buttons(field, *, answer_classes: bool, first_label=None, texts=None) -> str:
    """The three buttons and their labels, each label naming its button (for="..."). The attributes are
    the ones the widget would give each button (id, required, aria-invalid when the answer is refused,
    checked), in its order. `texts`: the choice labels already translated and escaped, by the label's id
    (every finding has the same three, each a lazy translation)."""
    texts = {} if texts is None else texts
    widget = field.field.widget
    name = escaped(field.html_name)
    auto_id = widget.attrs.get("id") or field.auto_id
    attrs = {**widget.attrs, **field.build_widget_attrs({"id": auto_id} if auto_id else {})}
    chosen = _checked_values(field.value())
    parts = []
    for index, (value, label) in enumerate(field.field.choices):
        value = str(value)
        if index == 0 and first_label is not None:
            label = first_label
        text = texts.get(id(label))
        if text is None:
            text = texts[id(label)] = escaped(label)
        option = dict(attrs)
        if value in chosen:
            option["checked"] = True
        if "id" in option:
            option["id"] = f"{option['id']}_{index}"
        css = f' class="answer-{escaped(value or "none")}"' if answer_classes else ""
        parts.append(
            f'<input type="radio" name="{name}" value="{escaped(value)}"{widget_attributes(option)}>'
            f'<label for="{escaped(option.get("id", ""))}"{css}>{text}</label>'
        )
    return "".join(parts)


def _errors(field) -> str:
    return "".join(f'<span class="error" role="alert">{escaped(error)}</span>' for error in field.errors)


@register.simple_tag
def tri_state_radios(field):
    """The pregnancy question's buttons (no answer classes: it is not a finding)."""
    return mark_safe(answer_buttons(field, answer_classes=False))  # noqa: S308 - every value above is escaped


@register.simple_tag
def field_errors(field):
    return mark_safe(_errors(field))  # noqa: S308 - escaped in _errors


@register.simple_tag(takes_context=True)
def finding_fieldsets(context, section):
    """Every finding of a section (the loop of the form template, with the subfebrile note after the fever
    red flag). A red flag not answered yes or no is marked "unanswered" and its first choice reads "Not
    asked"."""
    red_flags = section["key"] == "red_flags"
    not_asked = gettext("Not asked") if red_flags else None
    texts = {}
    out = []
    for field in section["findings"]:
        css = "finding"
        if red_flags:
            css += " red-flag"
            value = field.value()
            if value != "yes" and value != "no":
                css += " unanswered"
        if field.errors:
            css += " invalid"
        radios = answer_buttons(field, answer_classes=True, first_label=not_asked, texts=texts)
        out.append(
            f'\n    <fieldset class="{css}">\n'
            f"      <legend>{escaped(field.label)}</legend>\n"
            f'      <span class="tri">{radios}</span>\n'
            f"      {_errors(field)}\n"
            f"    </fieldset>\n    "
        )
        if field.name == "f_rf_fever":
            # As the template's include did: the note with the page's context (the live panel swaps it).
            out.append(context.template.engine.get_template("encounters/_subfebrile.html").render(context))
        out.append("\n    ")
    return mark_safe("".join(out))  # noqa: S308 - every value above is escaped

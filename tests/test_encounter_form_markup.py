"""The encounter form writes its buttons and text boxes directly (workups.forms.DirectWidgets and the
encounter_form template tags) for speed: what it writes must stay what Django's own widget templates write,
ids, checked answers, aria-invalid on a refused answer and escaping included, so that labels, the error
summary's links and the page's script keep working."""

import pytest
from django.forms.renderers import DjangoTemplates
from django.utils import translation
from django.utils.html import format_html_join

from clinic.forms import EncounterForm
from tests.record_factories import patient_of
from workups.forms import ENCOUNTER_FORM_RENDERER
from workups.templatetags.encounter_form import answer_buttons

POSTED = {
    "visit_date": "",
    "chief_complaint": 'Numbness <b>"here"</b> & there',
    "duration_days": "ten",
    "temperature_c": "37,5",
    "heart_rate": "80",
    "pregnant": "maybe",
    "f_loc_lumbar": "yes",
    "f_rf_fever": "no",
    "f_sx_urinary_frequency": "sometimes",
    "note_history": "<i>Two weeks</i>",
}


def forms_for(patient, **kwargs):
    return (
        EncounterForm(patient=patient, renderer=DjangoTemplates(), **kwargs),
        EncounterForm(patient=patient, renderer=ENCOUNTER_FORM_RENDERER, **kwargs),
    )


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("bound", [True, False], ids=["posted with errors", "a draft"])
def test_the_encounter_forms_text_boxes_are_written_as_djangos_widgets_write_them(gp, language, bound):
    patient = patient_of(gp, sex="female")
    kwargs = {"data": POSTED} if bound else {"initial": {**POSTED, "visit_date": "2024-03-01", "duration_days": 3}}
    with translation.override(language):
        django_form, direct_form = forms_for(patient, **kwargs)
        boxes = [name for name, field in direct_form.fields.items() if not name.startswith("f_") and name != "pregnant"]
        assert len(boxes) >= 10
        for name in boxes:
            assert str(direct_form[name]) == str(django_form[name]), name
    if bound:
        assert 'aria-invalid="true"' in str(direct_form["duration_days"])
        assert "&lt;b&gt;&quot;here&quot;&lt;/b&gt; &amp; there" in str(direct_form["chief_complaint"])


@pytest.mark.parametrize("bound", [True, False], ids=["posted with errors", "a draft"])
def test_every_answer_button_is_written_as_djangos_radio_buttons_write_it(gp, bound):
    patient = patient_of(gp, sex="female")
    kwargs = {"data": POSTED} if bound else {"initial": POSTED}
    django_form, direct_form = forms_for(patient, **kwargs)
    radios = [name for name in direct_form.fields if name.startswith("f_") or name == "pregnant"]
    assert len(radios) > 50
    for name in radios:
        expected = format_html_join(
            "", '{}<label for="{}">{}</label>', ((c.tag(), c.id_for_label, c.choice_label) for c in django_form[name])
        )
        assert answer_buttons(direct_form[name], answer_classes=False) == expected, name
    if bound:
        refused = answer_buttons(direct_form["f_sx_urinary_frequency"], answer_classes=False)
        assert 'aria-invalid="true"' in refused
        fever = answer_buttons(direct_form["f_rf_fever"], answer_classes=False)
        assert 'value="no" id="id_f_rf_fever_2" checked' in fever

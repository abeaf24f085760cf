"""The admin for a clinic's own staff: a staff member who is not a superuser sees and edits only their
clinic's objects in every admin with clinic data (lists, pages, related-object choices and filters),
credentials and other clinics' logins are for superusers only, nobody gives themselves powers, and every
admin read of patient data is audited (channel "admin", the patients shown, never a search term)."""

import datetime
import uuid

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from clinic.admin import CLINIC_LOOKUPS, PATIENT_LOOKUPS, AuditedReads, ClinicScoped
from clinic.audit import audit_record
from clinic.models import AuditEvent
from ehr.models import CardFeedback, EhrClient, IssuedCard
from referrals.models import Leaflet, Referral, Requisition
from tests.factories import MembershipFactory, UserFactory
from tests.record_factories import actor_for, api_token_for, clinic_of, encounter_of, patient_of, workup_for
from workups.models import Result


def record_of(gp, tag):
    """One of everything a clinic has, made by its GP."""
    clinic = clinic_of(gp)
    patient = patient_of(gp, family_name=f"Family{tag}", given_name="Anna", birth_date=datetime.date(1970, 1, 2))
    encounter = encounter_of(gp, patient=patient)
    workup = workup_for(gp, encounter)
    client = EhrClient.objects.create(clinic=clinic, name=f"EHR {tag}", issuer=f"https://ehr-{tag}.example.org")
    card = IssuedCard.objects.create(
        uuid=uuid.uuid4(), service="workup", rule=f"rule-{tag}", summary="s", client=client
    )
    common = {"clinic": clinic, "encounter": encounter, "created_by": gp}
    api_token_for(gp)
    audit_record(actor=actor_for(gp), action="view", object_type="patient", object_id=patient.pk, patient_id=patient.pk)
    return {
        "clinic.clinic": clinic,
        "clinic.membership": gp.membership,
        "clinic.patient": patient,
        "clinic.encounter": encounter,
        "clinic.auditevent": AuditEvent.objects.filter(clinic_id=clinic.pk).latest("id"),
        "auth.user": gp,
        "knox.authtoken": gp.auth_token_set.latest("created"),
        "workups.workup": workup,
        "workups.result": Result.objects.create(
            clinic=clinic, encounter=encounter, code="hb", flag="normal", entered_by=gp, entered_at=timezone.now()
        ),
        "referrals.referral": Referral.objects.create(specialty="neurology", urgency="routine", reason="r", **common),
        "referrals.requisition": Requisition.objects.create(workup=workup, **common),
        "referrals.leaflet": Leaflet.objects.create(workup=workup, **common),
        "ehr.ehrclient": client,
        "ehr.issuedcard": card,
        "ehr.cardfeedback": CardFeedback.objects.create(
            card=card,
            card_uuid=card.uuid,
            service="workup",
            rule=card.rule,
            outcome="accepted",
            client=client,
            outcome_at=timezone.now(),
        ),
    }


@pytest.fixture
def ours(gp):
    return record_of(gp, "ours")


@pytest.fixture
def theirs(other_gp):
    return record_of(other_gp, "theirs")


def staff_of(clinic, username="admin_olga"):
    """A staff member of `clinic` with every model permission, but not a superuser."""
    user = MembershipFactory(clinic=clinic, user__username=username, user__is_staff=True).user
    user.user_permissions.set(Permission.objects.all())
    return user


@pytest.fixture
def clinic_admin(gp):
    browser = Client()
    browser.force_login(staff_of(clinic_of(gp)))
    return browser


@pytest.fixture
def superuser(db):
    browser = Client()
    browser.force_login(UserFactory(username="root_ivan", is_staff=True, is_superuser=True))
    return browser


def url_of(label, obj=None, page="change"):
    app, model = label.split(".")
    return f"/admin/{app}/{model}/" + (f"{obj.pk}/{page}/" if obj is not None else "")


SCOPED = sorted(
    label
    for label in CLINIC_LOOKUPS
    if any(model._meta.label_lower == label for model in admin.site._registry)
    and label not in ("knox.authtoken",)  # knox's admin lists tokens without a change page of its own
)


def test_every_admin_of_a_model_with_clinic_data_is_scoped():
    unscoped = [
        model._meta.label_lower
        for model, model_admin in admin.site._registry.items()
        if model._meta.label_lower in CLINIC_LOOKUPS and not isinstance(model_admin, ClinicScoped)
    ]
    assert not unscoped
    unaudited = [
        model._meta.label_lower
        for model, model_admin in admin.site._registry.items()
        if model._meta.label_lower in PATIENT_LOOKUPS and not isinstance(model_admin, AuditedReads)
    ]
    assert not unaudited
    # Every model that reaches a clinic is in the table, so a new one cannot slip past it.
    for model in admin.site._registry:
        names = {field.name for field in model._meta.get_fields()}
        if names & {"clinic", "encounter", "patient", "workup", "client"}:
            assert model._meta.label_lower in CLINIC_LOOKUPS, model


@pytest.mark.parametrize("label", [*SCOPED, "knox.authtoken"])
def test_clinic_staff_list_only_their_clinics_objects(clinic_admin, ours, theirs, label):
    response = clinic_admin.get(url_of(label))

    assert response.status_code == 200
    shown = {obj.pk for obj in response.context["cl"].result_list}
    assert ours[label].pk in shown
    assert theirs[label].pk not in shown


@pytest.mark.parametrize("label", SCOPED)
def test_another_clinics_object_is_not_found_for_clinic_staff(clinic_admin, ours, theirs, label):
    assert clinic_admin.get(url_of(label, ours[label])).status_code == 200

    response = clinic_admin.get(url_of(label, theirs[label]))

    assert (response.status_code, response["Location"]) == (302, "/admin/")
    for page in ("history", "delete"):
        assert clinic_admin.get(url_of(label, theirs[label], page)).status_code in (302, 403)


@pytest.mark.parametrize("label", SCOPED)
def test_a_superuser_sees_every_clinic(superuser, ours, theirs, label):
    shown = {obj.pk for obj in superuser.get(url_of(label)).context["cl"].result_list}

    assert {ours[label].pk, theirs[label].pk} <= shown


def test_staff_in_no_clinic_see_nothing(ours, theirs):
    drifter = UserFactory(username="drifter", is_staff=True)
    drifter.user_permissions.set(Permission.objects.all())
    browser = Client()
    browser.force_login(drifter)

    for label in ("clinic.patient", "clinic.encounter", "clinic.auditevent"):
        assert list(browser.get(url_of(label)).context["cl"].result_list) == []


def test_related_choices_offer_only_the_own_clinic(clinic_admin, ours, theirs):
    page = clinic_admin.get("/admin/clinic/patient/add/").content.decode()
    assert f'<option value="{ours["clinic.clinic"].pk}"' in page
    assert f'<option value="{theirs["clinic.clinic"].pk}"' not in page
    assert "Familytheirs" not in clinic_admin.get(url_of("clinic.patient")).content.decode()

    newcomer = UserFactory(username="newcomer")
    refused = clinic_admin.post(
        "/admin/clinic/membership/add/", {"user": newcomer.pk, "clinic": theirs["clinic.clinic"].pk, "title": "GP"}
    )
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    moved = clinic_admin.post(
        url_of("clinic.encounter", ours["clinic.encounter"]),
        {
            "clinic": ours["clinic.clinic"].pk,
            "patient": theirs["clinic.patient"].pk,
            "clinician": ours["auth.user"].pk,
            "visit_date": "2025-03-03",
            "duration_days": 3,
            "findings": "{}",
            "notes": "{}",
            "status": "draft",
        },
    )
    assert moved.status_code == 200 and "Select a valid choice" in moved.content.decode()
    ours["clinic.encounter"].refresh_from_db()
    assert ours["clinic.encounter"].patient == ours["clinic.patient"]


def test_related_filters_list_only_the_own_clinic(clinic_admin, ours, theirs):
    page = clinic_admin.get(url_of("clinic.patient")).content.decode()

    assert ours["clinic.clinic"].name in page
    assert theirs["clinic.clinic"].name not in page


def test_the_acceptance_page_counts_only_the_own_clinics_cards(clinic_admin, superuser, ours, theirs):
    assert "rule-theirs" not in clinic_admin.get("/admin/ehr/cardfeedback/acceptance/").content.decode()
    assert "rule-theirs" in superuser.get("/admin/ehr/cardfeedback/acceptance/").content.decode()


def test_clinic_staff_cannot_make_anyone_more_than_they_are(gp, clinic_admin, ours):
    page = clinic_admin.get(url_of("auth.user", gp)).content.decode()

    for field in ("is_superuser", "is_staff", "groups", "user_permissions"):
        assert f'name="{field}"' not in page
    assert clinic_admin.get("/admin/clinic/clinic/add/").status_code == 403


@pytest.mark.parametrize(
    "url",
    [
        "/admin/otp_totp/totpdevice/",
        "/admin/otp_static/staticdevice/",
        "/admin/axes/accessattempt/",
        "/admin/axes/accesslog/",
        "/admin/axes/accessfailurelog/",
    ],
)
def test_credentials_and_login_records_are_for_superusers_only(clinic_admin, superuser, url):
    assert clinic_admin.get(url).status_code == 403
    assert superuser.get(url).status_code == 200


# -- audit ------------------------------------------------------------------------------------------


@pytest.fixture
def mark(db):
    start = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    since = {"id": start}

    def events():
        rows = list(AuditEvent.objects.filter(id__gt=since["id"]).order_by("id"))
        if rows:
            since["id"] = rows[-1].id
        return rows

    return events


@pytest.mark.parametrize("label", sorted(PATIENT_LOOKUPS))
def test_every_admin_list_of_patient_data_is_audited_with_the_patients_shown(clinic_admin, ours, theirs, mark, label):
    mark()
    clinic_admin.get(url_of(label))

    (event,) = mark()
    assert (event.action, event.object_type, event.channel) == ("list", label.split(".")[1], "admin")
    assert event.patient_ids == [ours["clinic.patient"].pk]
    assert event.actor.username == "admin_olga" and event.clinic_id == ours["clinic.clinic"].pk


@pytest.mark.parametrize("label", sorted(PATIENT_LOOKUPS))
def test_every_admin_page_of_patient_data_is_audited(clinic_admin, ours, mark, label):
    obj = ours[label]
    mark()
    clinic_admin.get(url_of(label, obj))
    clinic_admin.get(url_of(label, obj, "history"))

    events = mark()
    assert [(e.action, e.object_type, e.object_id, e.patient_id, e.channel) for e in events] == [
        ("view", label.split(".")[1], str(obj.pk), ours["clinic.patient"].pk, "admin")
    ] * 2


def test_an_admin_search_is_audited_without_the_term(clinic_admin, ours, mark):
    mark()
    clinic_admin.get(url_of("clinic.patient"), {"q": "Familyours"})

    (event,) = mark()
    assert (event.action, event.patient_ids) == ("search", [ours["clinic.patient"].pk])
    assert not any("Familyours" in str(value) for value in vars(event).values())


def test_an_admin_edit_of_a_patient_is_audited(clinic_admin, ours, mark):
    patient = ours["clinic.patient"]
    mark()
    response = clinic_admin.post(
        url_of("clinic.patient", patient),
        {
            "clinic": patient.clinic_id,
            "given_name": "Anna",
            "family_name": "Familyours",
            "birth_date": "1970-01-02",
            "sex": patient.sex,
        },
    )

    assert response.status_code == 302
    assert [(e.action, e.patient_id) for e in mark()] == [("view", patient.pk), ("update", patient.pk)]


def test_records_the_admin_shows_read_only_cannot_be_changed_there(superuser, ours):
    for label in ("workups.result", "referrals.referral", "referrals.requisition", "referrals.leaflet"):
        page = superuser.get(url_of(label, ours[label])).content.decode()
        assert 'name="_save"' not in page
        assert superuser.get(url_of(label) + "add/").status_code == 403

"""The admin, scoped to the clinic and audited.

Staff who are not superusers see and edit only their own clinic's objects: every ModelAdmin and inline of
a model that reaches a clinic filters its queryset, its foreign-key and many-to-many choices and its
related-object filters to the clinic of the staff member's membership (none without one). Superusers see
everything. Credentials (TOTP devices) and the lockout's records are for superusers only, and only a
superuser can make someone a superuser or grant permissions.

Every admin read of patient data is audited like a read in the app (channel "admin"): a list or search
(`list` / `search`, with the patients shown, never the search text) and each object opened (`view`: its
change, history or delete page), and each write (`create`, `update`, `delete`).
"""

from __future__ import annotations

from dataclasses import replace

from django import forms
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from clinic.audit import Actor, audit_probe, audit_record, client_ip
from clinic.forms import PatientForm
from clinic.models import AuditEvent, Clinic, ClinicHoliday, Encounter, Membership, Patient
from clinic.services import PATIENT_FIELDS, patient_create, patient_update, patient_validate

# How each model with clinic data reaches its clinic (a lookup that takes the clinic's id).
CLINIC_LOOKUPS = {
    "clinic.clinic": "pk",
    "clinic.clinicholiday": "clinic",
    "clinic.membership": "clinic",
    "clinic.patient": "clinic",
    "clinic.encounter": "clinic",
    "clinic.auditevent": "clinic_id",
    "auth.user": "membership__clinic",
    "knox.authtoken": "user__membership__clinic",
    "workups.workup": "encounter__clinic",
    "workups.workupitem": "workup__encounter__clinic",
    "workups.workupreferral": "workup__encounter__clinic",
    "workups.result": "encounter__clinic",
    "referrals.referral": "clinic",
    "referrals.referralevent": "referral__clinic",
    "referrals.requisition": "clinic",
    "referrals.leaflet": "clinic",
    "ehr.ehrclient": "clinic",
    "ehr.issuedcard": "client__clinic",
    "ehr.cardfeedback": "client__clinic",
    "ehr.smartaccesstoken": "client__clinic",
}
# How each model with patient data reaches its patient's id (for the audit trail).
PATIENT_LOOKUPS = {
    "clinic.patient": "pk",
    "clinic.encounter": "patient_id",
    "workups.workup": "encounter__patient_id",
    "workups.result": "encounter__patient_id",
    "referrals.referral": "encounter__patient_id",
    "referrals.requisition": "encounter__patient_id",
    "referrals.leaflet": "encounter__patient_id",
}


def staff_clinic(request) -> Clinic | None:
    membership = getattr(request.user, "membership", None)
    return membership.clinic if membership is not None else None


def scoped(queryset, request):
    """The queryset as this staff member may see it: all of it for a superuser, their clinic's part for
    anyone else (nothing without a clinic); a model with no clinic data is left as it is."""
    if request.user.is_superuser:
        return queryset
    lookup = CLINIC_LOOKUPS.get(queryset.model._meta.label_lower)
    if lookup is None:
        return queryset
    clinic = staff_clinic(request)
    if clinic is None:
        return queryset.none()
    if queryset.model is get_user_model():
        # Their clinic's accounts and accounts in no clinic yet (to give them a membership), never a superuser.
        return queryset.filter(Q(membership__clinic=clinic) | Q(membership__isnull=True), is_superuser=False)
    return queryset.filter(**{lookup: clinic.pk})


class ClinicScoped:
    """For a ModelAdmin or an inline: the queryset and every choice of a related object, scoped. Opening an
    object outside the scope (another clinic's) is audited as a probe; the admin answers as for a missing one."""

    def get_queryset(self, request):
        return scoped(super().get_queryset(request), request)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            audit_probe(request, action="not_found")
        return obj

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and hasattr(field, "queryset"):
            field.queryset = scoped(field.queryset, request)
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if field is not None and hasattr(field, "queryset"):
            field.queryset = scoped(field.queryset, request)
        return field


def _actor(request) -> Actor:
    return Actor(user=request.user, clinic=staff_clinic(request), channel="admin", ip=client_ip(request))


def _patient_ids(model, pks) -> list[int]:
    lookup = PATIENT_LOOKUPS[model._meta.label_lower]
    return list(model._default_manager.filter(pk__in=list(pks)).values_list(lookup, flat=True))


class AuditedReads(ClinicScoped):
    """A ModelAdmin of patient data: its lists, the objects it opens and its writes are audited."""

    def _object_type(self):
        return self.model._meta.model_name

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        shown = [obj.pk for obj in changelist.result_list]
        audit_record(
            actor=_actor(request),
            action="search" if changelist.query else "list",
            object_type=self._object_type(),
            patient_ids=sorted(set(_patient_ids(self.model, shown))) if shown else [],
        )
        return changelist

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            self._audit(request, "view", obj)
        return obj

    def _audit(self, request, action, obj):
        (patient_id,) = _patient_ids(self.model, [obj.pk]) or [None]
        audit_record(
            actor=_actor(request),
            action=action,
            object_type=self._object_type(),
            object_id=obj.pk,
            patient_id=patient_id,
        )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        self._audit(request, "update" if change else "create", obj)

    def delete_model(self, request, obj):
        self._audit(request, "delete", obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self._audit(request, "delete", obj)
        super().delete_queryset(request, queryset)


class SuperusersOnly:
    """Records no staff member of a clinic has any business with (credentials, other clinics' logins)."""

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request, *args):
        return request.user.is_superuser and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


def _rescope(model, mixin):
    """Re-register another app's ModelAdmin of `model` with `mixin` in front of it."""
    if not admin.site.is_registered(model):
        return
    original = type(admin.site._registry[model])
    admin.site.unregister(model)
    admin.site.register(model, type(original.__name__, (mixin, original), {"__module__": __name__}))


# -- users and the other apps' admins ---------------------------------------------------------------


User = get_user_model()


# Django names its default permissions in English when it creates them ("Can add patient"), whatever the reader's
# language; the admin shows them through these instead.
PERMISSION_ACTIONS = {
    "add": _("Can add %(model)s"),
    "change": _("Can change %(model)s"),
    "delete": _("Can delete %(model)s"),
    "view": _("Can view %(model)s"),
}


def permission_label(permission: Permission) -> str:
    """A permission as the admin shows it (app | model | what it allows), in the reader's language."""
    model = permission.content_type.model_class()
    if model is None:
        return str(permission)
    meta = model._meta
    action, _separator, model_name = permission.codename.partition("_")
    name = (
        PERMISSION_ACTIONS[action] % {"model": meta.verbose_name}
        if action in PERMISSION_ACTIONS and model_name == meta.model_name
        else permission.name
    )
    return f"{apps.get_app_config(meta.app_label).verbose_name} | {meta.verbose_name} | {name}"


class PermissionLabels:
    """A ModelAdmin mixin: its permission choices labelled by `permission_label`."""

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if field is not None and db_field.related_model is Permission:
            field.label_from_instance = permission_label
        return field


class ScopedUserAdmin(ClinicScoped, PermissionLabels, UserAdmin):
    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            # Only a superuser gives powers: nobody makes themselves (or a colleague) more than they are.
            fields += ["is_superuser", "is_staff", "groups", "permissions_granted"]
        return fields

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        # Shown, not edited: the permissions in the reader's language (a read-only many-to-many shows the names
        # Django stored, in English).
        return [
            (
                name,
                {
                    **options,
                    "fields": [
                        "permissions_granted" if field == "user_permissions" else field for field in options["fields"]
                    ],
                },
            )
            for name, options in fieldsets
        ]

    @admin.display(description=_("user permissions"))
    def permissions_granted(self, user):
        granted = user.user_permissions.select_related("content_type")
        return ", ".join(permission_label(permission) for permission in granted) or "-"


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, ScopedUserAdmin)


class LabelledGroupAdmin(PermissionLabels, GroupAdmin):
    pass


if admin.site.is_registered(Group):
    admin.site.unregister(Group)
admin.site.register(Group, LabelledGroupAdmin)


def _rescope_installed_apps():
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice
    from knox.models import AuthToken

    _rescope(AuthToken, ClinicScoped)
    for model in (TOTPDevice, StaticDevice, AccessAttempt, AccessLog, AccessFailureLog):
        _rescope(model, SuperusersOnly)


_rescope_installed_apps()


# -- the clinic's own models ------------------------------------------------------------------------


class MembershipInline(ClinicScoped, admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class ClinicHolidayInline(ClinicScoped, admin.TabularInline):
    """Days not counted as working days for due dates (GUIDANCE 7)."""

    model = ClinicHoliday
    extra = 0


@admin.register(Clinic)
class ClinicAdmin(ClinicScoped, admin.ModelAdmin):
    list_display = ["name", "legal_name", "ogrn", "phone", "language", "time_zone", "two_factor_required", "created_at"]
    search_fields = ["name", "legal_name", "ogrn"]
    inlines = [MembershipInline, ClinicHolidayInline]

    # Clinics are made and removed by superusers; staff keep their own clinic's details.
    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Membership)
class MembershipAdmin(ClinicScoped, admin.ModelAdmin):
    list_display = ["user", "full_name", "position", "clinic", "language"]
    list_select_related = ["user", "clinic"]
    autocomplete_fields = ["user", "clinic"]


class PatientAdminForm(forms.ModelForm):
    """Checked as the services check a patient before saving (names, birth date, SNILS and policy, another
    patient with the same identifier, the encounters already recorded), so that an error shows at its field
    rather than failing when the admin saves."""

    # The SNILS and policy as staff type them ("112-233-445 95"), kept as digits: the app's own form's fields.
    snils = PatientForm.base_fields["snils"]
    oms_policy = PatientForm.base_fields["oms_policy"]
    clean_snils = PatientForm.clean_snils
    clean_oms_policy = PatientForm.clean_oms_policy

    class Meta:
        model = Patient
        fields = ["clinic", *PATIENT_FIELDS]

    def _post_clean(self):
        super()._post_clean()
        if self._errors:
            return
        try:
            patient_validate(patient=self.instance)
        except ValidationError as error:
            self._update_errors(error)


@admin.register(Patient)
class PatientAdmin(AuditedReads, admin.ModelAdmin):
    form = PatientAdminForm
    list_display = ["family_name", "given_name", "middle_name", "birth_date", "sex", "snils", "identifier", "clinic"]
    list_select_related = ["clinic"]
    list_filter = [("clinic", admin.RelatedOnlyFieldListFilter), "sex"]
    search_fields = ["name_search", "identifier", "=snils", "=oms_policy"]
    readonly_fields = ["name_search", "version", "created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        # A patient stays in their clinic: the encounters, referrals and audit trail are that clinic's, and no
        # service moves them.
        return fields + ["clinic"] if obj is not None else fields

    def save_model(self, request, obj, form, change):
        # Saved by the services, as the app and the API save a patient: they fill the search key, move the
        # version (the FHIR ETag) and write the audit row (channel "admin"), so no _audit here.
        if change:
            changes = {name: form.cleaned_data[name] for name in form.changed_data if name in PATIENT_FIELDS}
            patient_update(actor=_actor(request), patient=obj, **changes)
            return
        # The clinic chosen in the form (only their own is offered to clinic staff): the patient's and the row's.
        created = patient_create(
            actor=replace(_actor(request), clinic=obj.clinic),
            **{name: getattr(obj, name) for name in PATIENT_FIELDS},
        )
        # The admin goes on with `obj` (its log entry, the redirect to the new page): make it the saved patient.
        for field in Patient._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding, obj._state.db = False, created._state.db


@admin.register(Encounter)
class EncounterAdmin(AuditedReads, admin.ModelAdmin):
    list_display = ["id", "patient", "visit_date", "clinician", "status"]
    list_select_related = ["patient", "clinician"]
    list_filter = ["status", ("clinic", admin.RelatedOnlyFieldListFilter)]
    raw_id_fields = ["patient", "clinician", "finalized_by"]


@admin.register(AuditEvent)
class AuditEventAdmin(ClinicScoped, admin.ModelAdmin):
    """Read-only: the trail is append-only, for staff to inspect (their own clinic's, unless superusers)."""

    list_display = [
        "at",
        "actor_username",
        "action",
        "object_type",
        "object_id",
        "patient_id",
        "channel",
        "endpoint",
        "ip_address",
    ]
    list_filter = ["action", "object_type", "channel"]
    search_fields = ["actor_username", "=patient_id", "=object_id"]
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

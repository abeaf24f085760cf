"""Two-factor login for the web (django-otp): a time-based code from an authenticator app (TOTP), or one of
ten single-use recovery codes (django-otp's static device).

- A GP turns it on at /accounts/two-factor/: the page shows the otpauth:// URI as a QR code (inline SVG, no
  script) and as a key to type; the first code from the app confirms it and the recovery codes are shown,
  once.
- From the next login on, the password is not enough: the session is signed in but unverified, and every
  page sends the GP to the code page until a code is accepted (TwoFactorMiddleware); an API call made with
  such a session is anonymous. Tokens for the API are issued with the password alone (for EHRs and scripts).
- A clinic can require it (Clinic.two_factor_required): its GPs without a device are sent to turn it on
  before anything else.
- Wrong codes are throttled by django-otp (each failure doubles the wait: 1 s, 2 s, 4 s, ...): while
  throttled the page answers 429 with Retry-After. Failures, recovery codes used, turning it on and off
  are audited (object "user", no patient).

What the login decided is kept in the session ("two_factor": "verify" or "enrol"), so the check costs no
query on each request; a change of the clinic's setting applies from each GP's next login.
"""

from __future__ import annotations

import math
import re
from base64 import b32encode
from urllib.parse import urlencode

import segno
from django import forms
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth import SESSION_KEY as SESSION_KEY_AUTH
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from clinic.audit import Actor, audit_record, client_ip

SESSION_KEY = "two_factor"
VERIFY, ENROL = "verify", "enrol"
RECOVERY_CODES = 10
# Machine callers: a session that still owes its code is anonymous there.
MACHINE_PREFIXES = ("/api/", "/fhir/", "/cds-services")


# -- reads and writes ---------------------------------------------------------------------------------


def totp_device(user, *, confirmed: bool = True) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=confirmed).order_by("id").first()


def required_by_clinic(user) -> bool:
    membership = getattr(user, "membership", None)
    return bool(membership and membership.clinic.two_factor_required)


def login_step(user) -> str | None:
    """What a password login still owes: a code (VERIFY), turning two-factor on (ENROL), or nothing."""
    if totp_device(user) is not None:
        return VERIFY
    if required_by_clinic(user):
        return ENROL
    return None


def pending_device(user) -> TOTPDevice:
    """The unconfirmed device whose key the setup page shows (the same one until it is confirmed)."""
    device = totp_device(user, confirmed=False)
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="authenticator app", confirmed=False)
    return device


def new_recovery_codes(user) -> list[str]:
    """Ten new single-use codes; the old ones stop working."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="recovery", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


def _normalised(code: str) -> str:
    return re.sub(r"[\s-]", "", code or "").lower()


def throttled_for(device) -> int | None:
    """Seconds until django-otp lets this device check a code again, or None if it may now."""
    allowed, details = device.verify_is_allowed()
    if allowed:
        return None
    until = (details or {}).get("locked_until")
    return max(1, math.ceil((until - timezone.now()).total_seconds())) if until else 1


def _actor(request) -> Actor:
    user = request.user
    membership = getattr(user, "membership", None)
    return Actor(user=user, clinic=membership.clinic if membership else None, channel="web", ip=client_ip(request))


def _audit(request, action: str) -> None:
    audit_record(actor=_actor(request), action=action, object_type="user", object_id=request.user.pk)


def _signed_in_with(request, device) -> None:
    """The session is verified by this device from now on, under a new id."""
    otp_login(request, device)
    request.session.pop(SESSION_KEY, None)
    request.session.cycle_key()


# -- the login hook and the gate --------------------------------------------------------------------


def mark_login(sender, request, user, **kwargs):
    """user_logged_in receiver (ClinicConfig.ready): note in the session what the login still owes."""
    session = getattr(request, "session", None)
    if session is None or session.get(SESSION_KEY_AUTH) is None:  # not a session login
        return
    step = login_step(user)
    if step is None:
        session.pop(SESSION_KEY, None)
    else:
        session[SESSION_KEY] = step


def _next_of(request) -> str:
    target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME) or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        return "/"
    # Only a path of this site: redirect() would read "abc" as the name of a URL pattern (a server error when
    # there is none, and a way to reach any named page when there is).
    if not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


class TwoFactorMiddleware:
    """After OTPMiddleware and the session timeout: a session that owes its code (or its setup) reaches only
    the two-factor pages, logout and the language switch; any other page redirects there, an htmx fragment
    gets nothing, and an API, FHIR or CDS call made with it is anonymous."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        step = request.session.get(SESSION_KEY)
        if step in (VERIFY, ENROL) and request.user.is_authenticated and not request.user.is_verified():
            if request.path.startswith(MACHINE_PREFIXES):
                request.user = AnonymousUser()
            else:
                page = reverse("two-factor-verify" if step == VERIFY else "two-factor-setup")
                allowed = {page, reverse("logout"), reverse("language-switch"), reverse("admin:logout")}
                if request.path not in allowed:
                    if request.headers.get("HX-Request") == "true":
                        # Only the two-factor pages can have been shown to this session: their header's
                        # fragments (the worklist badge) get nothing, and the page stays.
                        return HttpResponse(status=204)
                    # Back to this page afterwards (its path only: a query string may hold a search term).
                    return redirect(f"{page}?{urlencode({REDIRECT_FIELD_NAME: request.path})}")
        return self.get_response(request)


# -- pages ------------------------------------------------------------------------------------------


class CodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code"),
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autocapitalize": "off", "spellcheck": "false"}),
    )

    def clean_code(self):
        code = _normalised(self.cleaned_data["code"])
        if not code.isalnum():
            raise forms.ValidationError(_("Type the code with its letters and digits only."))
        return code


def _qr_svg(uri: str) -> str:
    svg = segno.make(uri, error="m").svg_inline(scale=5, border=4, title=_("QR code to scan with the app"))
    # An image with a name for screen readers (the <title> inside).
    return svg.replace("<svg ", '<svg role="img" ', 1)


def _throttled_page(request, template, context, retry_after):
    context = {**context, "retry_seconds": retry_after}
    response = render(request, template, context, status=429)
    response["Retry-After"] = str(retry_after)
    return response


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def setup(request):
    """Turn two-factor login on: scan, type the first code, get the recovery codes."""
    if totp_device(request.user) is not None:
        if request.session.get(SESSION_KEY) == ENROL and not request.user.is_verified():
            # Turned on in another session meanwhile: this one owes a code now.
            request.session[SESSION_KEY] = VERIFY
            return redirect(f"{reverse('two-factor-verify')}?{urlencode({REDIRECT_FIELD_NAME: _next_of(request)})}")
        return redirect("two-factor")
    device = pending_device(request.user)
    form = CodeForm(request.POST or None)
    context = {
        "form": form,
        "uri": device.config_url,
        "qr": _qr_svg(device.config_url),
        "key": " ".join(re.findall(".{1,4}", b32encode(device.bin_key).decode())),
        "required": required_by_clinic(request.user),
        "next": _next_of(request),
    }
    template = "registration/two_factor_setup.html"
    if request.method == "POST":
        wait = throttled_for(device)
        if wait is not None:
            return _throttled_page(request, template, context, wait)
        if not form.is_valid():
            return render(request, template, context, status=400)
        with transaction.atomic():
            if not TOTPDevice.objects.select_for_update().get(pk=device.pk).verify_token(form.cleaned_data["code"]):
                form.add_error("code", _("That code is not right. Type the code the app shows now."))
                _audit(request, "two_factor_failed")
                return render(request, template, context, status=400)
            device.refresh_from_db()
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            TOTPDevice.objects.filter(user=request.user, confirmed=False).delete()
            codes = new_recovery_codes(request.user)
        _signed_in_with(request, device)
        _audit(request, "two_factor_on")
        return render(
            request,
            "registration/two_factor_recovery_codes.html",
            {"codes": codes, "next": context["next"], "first_time": True},
        )
    return render(request, template, context)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def verify(request):
    """The login's second step: a code from the app, or a recovery code."""
    if request.session.get(SESSION_KEY) == ENROL:
        return redirect("two-factor-setup")
    device = totp_device(request.user)
    next_page = _next_of(request)
    if device is None or request.user.is_verified():
        # Nothing to check (turned off in another session meanwhile), or checked already.
        request.session.pop(SESSION_KEY, None)
        return redirect(next_page)
    form = CodeForm(request.POST or None)
    context = {"form": form, "next": next_page}
    template = "registration/two_factor_verify.html"
    if request.method != "POST":
        return render(request, template, context)
    if not form.is_valid():
        return render(request, template, context, status=400)
    code = form.cleaned_data["code"]
    recovery = StaticDevice.objects.filter(user=request.user).first()
    # Six digits: the app's code; anything else: a recovery code.
    checked = device if code.isdigit() and len(code) == device.digits else recovery
    if checked is None:
        form.add_error("code", _("That code is not right. Type the code the app shows now, or a recovery code."))
        _audit(request, "two_factor_failed")
        return render(request, template, context, status=400)
    wait = throttled_for(checked)
    if wait is not None:
        return _throttled_page(request, template, context, wait)
    with transaction.atomic():
        locked = type(checked).objects.select_for_update().get(pk=checked.pk)
        accepted = locked.verify_token(code)
    if not accepted:
        form.add_error("code", _("That code is not right. Type the code the app shows now, or a recovery code."))
        _audit(request, "two_factor_failed")
        return render(request, template, context, status=400)
    _signed_in_with(request, locked)
    if isinstance(locked, StaticDevice):
        left = StaticToken.objects.filter(device=locked).count()
        _audit(request, "recovery_code_used")
        messages.warning(
            request,
            _("You used a recovery code; %(left)s are left. Make new ones on the two-step login page.")
            % {"left": left},
        )
    return redirect(next_page)


@login_required
@require_safe
def status(request):
    """Whether two-factor login is on, with new recovery codes and turning it off."""
    device = totp_device(request.user)
    recovery = StaticDevice.objects.filter(user=request.user).first()
    return render(
        request,
        "registration/two_factor_status.html",
        {
            "device": device,
            "codes_left": StaticToken.objects.filter(device=recovery).count() if recovery else 0,
            "required": required_by_clinic(request.user),
        },
    )


def _unverified(request):
    """A session from before two-factor was turned on has not given a code: it changes nothing here."""
    if request.user.is_verified():
        return None
    request.session[SESSION_KEY] = VERIFY
    return redirect(f"{reverse('two-factor-verify')}?{urlencode({REDIRECT_FIELD_NAME: reverse('two-factor')})}")


@login_required
@require_POST
def recovery_codes(request):
    if totp_device(request.user) is None:
        return redirect("two-factor-setup")
    if (refused := _unverified(request)) is not None:
        return refused
    codes = new_recovery_codes(request.user)
    _audit(request, "recovery_codes_new")
    return render(
        request, "registration/two_factor_recovery_codes.html", {"codes": codes, "next": reverse("two-factor")}
    )


@login_required
@require_POST
def turn_off(request):
    if totp_device(request.user) is None:
        return redirect("two-factor")
    if (refused := _unverified(request)) is not None:
        return refused
    if required_by_clinic(request.user):
        messages.error(request, _("Your clinic requires two-step login: it cannot be turned off."))
        return redirect("two-factor")
    with transaction.atomic():
        TOTPDevice.objects.filter(user=request.user).delete()
        StaticDevice.objects.filter(user=request.user).delete()
    request.session.pop(DEVICE_ID_SESSION_KEY, None)
    _audit(request, "two_factor_off")
    messages.success(request, _("Two-step login is off."))
    return redirect("two-factor")

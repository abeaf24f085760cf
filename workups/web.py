"""The workup page in the browser: recommendations, decisions, additions, results, printing."""

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from clinic import selectors as record_selectors
from clinic.audit import actor_from_request
from clinic.errors import RecordLocked
from clinic.summary import findings_summary, record_context, vital_signs
from workups import selectors, services
from workups.forms import AddItemForm, AddReferralForm, DecisionForm
from workups.localized import current_kb
from workups.models import WorkupItem, WorkupReferral

GROUPS = [
    ("lab", gettext_lazy("Laboratory")),
    ("functional", gettext_lazy("Functional diagnostics")),
    ("imaging", gettext_lazy("Imaging")),
]


# What the layers above add to the workup page: referrals registers the encounter's letters, requisition
# and leaflet (referrals.apps), so the page shows them while the workups import nothing of the letters.
# Each is called with the encounter and the workup as the page shows it (None before any; a section may
# mark its rows) and returns more context for the template.
WORKUP_PAGE_SECTIONS: list[Callable[..., dict]] = []


# A message about the results (entered, acknowledged, refused) follows the GP to the results panel, where the
# redirect to #results lands: at the top of a long page it was off-screen.
AT_RESULTS = "at-results"


def _actor(request):
    return actor_from_request(request, channel="web")


def _render_workup(request, context):
    """The workup page; when it shows the results panel, the messages tagged AT_RESULTS are shown there instead of
    at the page's top."""
    if context.get("result"):
        stored = list(get_messages(request))
        context["messages"] = [m for m in stored if AT_RESULTS not in (m.extra_tags or "").split()]
        context["results_messages"] = [m for m in stored if AT_RESULTS in (m.extra_tags or "").split()]
    return render(request, "workups/detail.html", context)


def _context(actor, encounter, **extra):
    workup = selectors.workup_latest(actor=actor, encounter=encounter)
    result = selectors.workup_representation(workup=workup, encounter=encounter) if workup else None
    grouped = []
    if result:
        for key, title in GROUPS:
            rows = [item for item in result["items"] if item["category"] == key]
            if rows:
                grouped.append({"key": key, "title": title, "items": rows})
    sections = {}
    for section in WORKUP_PAGE_SECTIONS:
        sections.update(section(encounter=encounter, result=result))
    panel = results_context(
        actor,
        encounter,
        workup,
        errors=extra.pop("result_errors", None),
        posted=extra.pop("result_posted", None),
        acknowledge_errors=extra.pop("acknowledge_errors", None),
        acknowledge_posted=extra.pop("acknowledge_posted", None),
    )
    return {
        "encounter": encounter,
        "patient": encounter.patient,
        "workup": workup,
        "result": result,
        **panel,
        **sections,
        "pending": any(row["decision"] == "pending" for row in (result["items"] + result["referrals"]) if result)
        if result
        else False,
        # The requisition lists the accepted tests: with none, the page says so rather than offer a button
        # that can only refuse.
        "tests_accepted": any(row["decision"] == "accepted" for row in result["items"]) if result else False,
        **record_context(encounter),
        "groups": grouped,
        "vocabulary": current_kb().vocabulary,
        "add_item_form": AddItemForm(),
        "add_referral_form": AddReferralForm(),
        "editable": not encounter.is_finalized,
        "summary": findings_summary(encounter),
        "vitals": vital_signs(encounter),
        **extra,
    }


@login_required
@require_safe
def workup_page(request, pk):
    actor = _actor(request)
    encounter = record_selectors.encounter_get(actor=actor, encounter_id=pk)
    return _render_workup(request, _context(actor, encounter))


@login_required
@require_safe
def workup_print(request, pk):
    actor = _actor(request)
    encounter = record_selectors.encounter_get(actor=actor, encounter_id=pk, action="print")
    return render(request, "workups/print.html", _context(actor, encounter))


def _guarded(request, pk, action):
    """Run a write for encounter `pk`; a finalized record or bad input comes back as a message."""
    actor = _actor(request)
    encounter = record_selectors.encounter_get(actor=actor, encounter_id=pk, action="open_for_update")
    try:
        action(actor, encounter)
    except RecordLocked as error:
        messages.error(request, error.message)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    return redirect("encounter-workup", pk=encounter.pk)


@login_required
@require_POST
def workup_generate(request, pk):
    return _guarded(request, pk, lambda actor, encounter: services.workup_generate(actor=actor, encounter=encounter))


def _add_by_hand(request, pk, form_class, add, problem):
    """Add a test or a referral the GP chose from the catalogue to the current workup."""

    def action(actor, encounter):
        form = form_class(request.POST)
        if not form.is_valid():
            raise ValidationError(problem)
        add(actor=actor, workup=services.workup_current(actor=actor, encounter=encounter), **form.cleaned_data)

    return _guarded(request, pk, action)


@login_required
@require_POST
def workup_add_item(request, pk):
    return _add_by_hand(
        request, pk, AddItemForm, services.workup_item_add, gettext_lazy("Choose a test and an urgency.")
    )


@login_required
@require_POST
def workup_add_referral(request, pk):
    return _add_by_hand(
        request, pk, AddReferralForm, services.workup_referral_add, gettext_lazy("Choose a specialty and an urgency.")
    )


@login_required
@require_POST
def workup_accept_all(request, pk):
    """Accept every recommendation still pending ("accept all recommended"); declined ones stay declined."""

    def accept_all(actor, encounter):
        workup = selectors.workup_latest(actor=actor, encounter=encounter)
        if workup is None:
            raise ValidationError(_("No workup has been generated yet."))
        count = services.workup_accept_all(actor=actor, workup=workup)
        messages.success(
            request,
            ngettext("Accepted %(count)s recommendation.", "Accepted %(count)s recommendations.", count)
            % {"count": count},
        )

    return _guarded(request, pk, accept_all)


def _decide(request, pk, model, template):
    actor = _actor(request)
    row = selectors.recommendation_get(actor=actor, model=model, pk=pk)
    form = DecisionForm(request.POST)
    error = ""
    if not form.is_valid():
        error = _("Choose accept or decline.")
    else:
        try:
            row = services.recommendation_decide(actor=actor, recommendation=row, **form.cleaned_data)
        except (ValidationError, RecordLocked) as problem:
            error = (
                problem.message if isinstance(problem, RecordLocked) else " ".join(_words(m) for m in problem.messages)
            )
    vocabulary = current_kb().vocabulary
    if request.htmx:
        encounter = row.workup.encounter
        context = {}
        rendered = None
        if request.POST.get("next") != "review":
            # On the workup page the results panel and the documents follow the decisions (the tests awaiting a
            # result, the requisition's button): sent again out of band with the row, as the page would show them.
            context = _context(actor, encounter, oob=True)
            rows = (context["result"] or {}).get("items" if model is WorkupItem else "referrals", [])
            rendered = next((shown for shown in rows if shown["id"] == row.pk), None)
        return render(
            request,
            "workups/_decided.html",
            {
                **context,
                "row": rendered or selectors.recommendation_row(row),
                "row_template": template,
                "error": error,
                # The row is decided on (a follow-up workup's after finalizing too); the sections as the page has them.
                "editable": context.get("editable", True),
                "encounter": encounter,
                "next": "review" if request.POST.get("next") == "review" else "",
                "vocabulary": vocabulary,
            },
        )
    if error:
        messages.error(request, _words(error))
    if request.POST.get("next") == "review":
        return redirect("encounter-review", pk=row.workup.encounter_id)
    return redirect("encounter-workup", pk=row.workup.encounter_id)


@login_required
@require_POST
def item_decide(request, pk):
    return _decide(request, pk, WorkupItem, "workups/_item.html")


@login_required
@require_POST
def referral_decide(request, pk):
    return _decide(request, pk, WorkupReferral, "workups/_referral.html")


# -- results, the follow-up review, acknowledgement (GUIDANCE 6 and 7) ----------------------------

# The service's words for a date or a note, in the page's language.
PROBLEM_WORDS = {
    "The date is in the future.": gettext_lazy("The date is in the future."),
    "The date is before the visit that ordered the test.": gettext_lazy(
        "The date is before the visit that ordered the test."
    ),
    "Ensure this field has no more than 2000 characters.": gettext_lazy(
        "Ensure this field has no more than 2000 characters."
    ),
    "Control characters are not allowed.": gettext_lazy("Control characters are not allowed."),
    "Say what was done about this result.": gettext_lazy("Say what was done about this result."),
    "Enter at least one result before reviewing.": gettext_lazy("Enter at least one result before reviewing."),
    "This result has been acknowledged already.": gettext_lazy("This result has been acknowledged already."),
    "This result has been superseded by a newer value: acknowledge that one.": gettext_lazy(
        "This result has been superseded by a newer value: acknowledge that one."
    ),
    "This result is within its reference: there is nothing to acknowledge.": gettext_lazy(
        "This result is within its reference: there is nothing to acknowledge."
    ),
    "Only the latest workup of an encounter can be changed.": gettext_lazy(
        "Only the latest workup of an encounter can be changed."
    ),
}


def _words(message) -> str:
    return str(PROBLEM_WORDS.get(str(message), message))


def _problems(error: ValidationError) -> dict:
    """{field: [message in the page's language]} of a service's ValidationError."""
    pairs = error.message_dict.items() if hasattr(error, "error_dict") else [(None, error.messages)]
    return {field: [_words(message) for message in messages_] for field, messages_ in pairs}


def parse_result_value(meta: dict, raw: str):
    """(value, problem) of what the GP typed or chose: a number (a decimal comma and spaces between
    thousands allowed) or true/false; ('', None) when nothing was given."""
    raw = (raw or "").strip()
    if raw == "":
        return None, None
    if meta["type"] == "boolean":
        if raw in ("true", "false"):
            return raw == "true", None
        return None, _("Choose one of the answers.")
    text = raw.replace("\u00a0", "").replace("\u202f", "").replace(" ", "").replace(",", ".")
    try:
        value = float(text)
    except ValueError:
        return None, _("Enter a number in %(unit)s.") % {"unit": meta["unit"]}
    if value != value or value in (float("inf"), float("-inf")):
        return None, _("Enter a number in %(unit)s.") % {"unit": meta["unit"]}
    return (int(value) if value.is_integer() else value), None


def _boolean_words(meta) -> tuple[str, str]:
    """The flags a true/false analyte takes: (when true, when false)."""
    return ("present", "absent") if "present" in (meta.get("reference") or {}) else ("positive", "negative")


def results_context(
    actor, encounter, workup, *, errors=None, posted=None, acknowledge_errors=None, acknowledge_posted=None
) -> dict:
    """The results panel: one row per awaited test (accepted items of the latest workup that a result
    code answers) with its analytes and units, and every result entered (current first).
    `acknowledge_posted`: the refused form acknowledging several results ({"ids", "note", "errors"})."""
    vocabulary = current_kb().vocabulary
    answers = services.result_codes_by_test()
    stored = selectors.results_of_encounter(actor=actor, encounter=encounter)
    current = {result.code: result for result in stored if result.superseded_at is None}
    posted_test = (posted or {}).get("test")
    tests = []
    for item in workup.items.all() if workup else []:
        if item.decision != "accepted" or item.code not in answers:
            continue
        mine = posted_test == item.code
        analytes = []
        for code in answers[item.code]:
            meta = vocabulary.results[code]
            true_word, false_word = _boolean_words(meta) if meta["type"] == "boolean" else ("", "")
            analytes.append(
                {
                    "code": code,
                    "name": meta["name"],
                    "unit": meta.get("unit", ""),
                    "type": meta["type"],
                    "true_word": true_word,
                    "false_word": false_word,
                    "current": current.get(code),
                    "posted": (posted or {}).get(code, "") if mine else "",
                    "errors": (errors or {}).get(code, []) if mine else [],
                }
            )
        tests.append(
            {
                "code": item.code,
                "name": vocabulary.items[item.code]["name"],
                "urgency": item.urgency,
                "analytes": analytes,
                "mine": mine,
                "errors": [message for field in (None, "code", "__all__") for message in (errors or {}).get(field, [])]
                if mine
                else [],
                "performed_on_errors": (errors or {}).get("performed_on", []) if mine else [],
                "note_errors": (errors or {}).get("note", []) if mine else [],
                "performed_on": (posted or {}).get("performed_on", "") if mine else "",
                "note": (posted or {}).get("note", "") if mine else "",
            }
        )
    rows = []
    for result in stored:
        meta = vocabulary.results.get(result.code, {})
        row = selectors.result_row(result)
        row.update(
            {
                "object": result,
                "type": meta.get("type"),
                "acknowledge_errors": (acknowledge_errors or {}).get(result.pk, ([], ""))[0],
                "acknowledge_note": (acknowledge_errors or {}).get(result.pk, ([], ""))[1],
                "can_acknowledge": result.abnormal and result.current and not result.acknowledged,
            }
        )
        rows.append(row)
    panel_errors = []
    if posted_test and not any(test["mine"] for test in tests):
        panel_errors = [message for messages_ in (errors or {}).values() for message in messages_]
    acknowledge_many = _acknowledge_many(rows, acknowledge_posted)
    if acknowledge_posted and not acknowledge_many["shown"]:
        # Nothing left to tick (another GP signed them off meanwhile): the refusal shows at the panel's top.
        panel_errors += acknowledge_many["errors"] + acknowledge_many["note_errors"]
    return {
        "result_tests": tests,
        "results": rows,
        "acknowledge_many": acknowledge_many,
        "has_current_results": bool(current),
        "plan_change": selectors.results_plan_change(encounter=encounter, workup=workup, current=current),
        "result_panel_errors": panel_errors,
        "follow_up": workup is not None and workup.kind == "follow_up",
    }


def _acknowledge_many(rows, posted) -> dict:
    """The form signing several abnormal results off with one note: shown when two or more await it (one has
    its own form), or when it was refused. None ticked (an older result may be unrelated to what the GP acts on)
    unless the refused form had it ticked; each with its day (performed, else entered) to tell today's from older."""
    candidates = [row for row in rows if row["can_acknowledge"]]
    errors = dict((posted or {}).get("errors") or {})
    names = {row["id"]: row["name"] for row in rows}
    results_errors = list(errors.pop("results", []))
    # A result that could not be acknowledged (its id from the service): named for the GP.
    conflicts = (posted or {}).get("conflicts") or {}
    if conflicts:
        results_errors.append(_("Nothing was acknowledged."))
    for pk, message in conflicts.items():
        results_errors.append(f"{names.get(pk, pk)}: {_words(message)}")
    note_errors = list(errors.pop("note", []))
    other = [message for messages_ in errors.values() for message in messages_]
    ticked = (posted or {}).get("ids")
    return {
        "shown": len(candidates) > 1 or (posted is not None and bool(candidates)),
        "rows": [
            {
                **row,
                "ticked": ticked is not None and row["id"] in ticked,
                "day": row["object"].performed_on or timezone.localdate(row["object"].entered_at),
            }
            for row in candidates
        ],
        "errors": results_errors + other,
        "note_errors": note_errors,
        "note": (posted or {}).get("note", ""),
    }


def _workup_page(request, actor, encounter, **extra):
    return _render_workup(request, _context(actor, encounter, **extra))


@login_required
@require_POST
def results_check(request, pk):
    """htmx: the flag of one value as it is typed (low/normal/high…, with its reference), or why it is
    refused (a haemoglobin of 13.2 g/L: check the unit). Nothing is stored."""
    actor = _actor(request)
    encounter = record_selectors.encounter_get(actor=actor, encounter_id=pk, action="preview")
    code = request.POST.get("code", "")
    meta = current_kb().vocabulary.results.get(code)
    context = {"flag": "", "reference": "", "problem": ""}
    if meta is None:
        context["problem"] = _("Unknown result.")
    else:
        value, problem = parse_result_value(meta, request.POST.get(code, ""))
        if problem:
            context["problem"] = problem
        elif value is not None:
            problems = services.result_problems(encounter=encounter, code=code, value=value)
            if problems:
                context["problem"] = " ".join(_words(m) for messages_ in problems.values() for m in messages_)
            else:
                pregnant = services._result_pregnant(encounter, services.results_current(encounter), code, value)
                from django.utils.translation import get_language

                context["flag"], context["reference"] = services.result_interpret(
                    encounter=encounter,
                    code=code,
                    value=value,
                    pregnant=pregnant,
                    language=(get_language() or "ru")[:2],
                )
    return render(request, "workups/_result_flag.html", context)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def results_enter(request, pk):
    """Enter the values of one awaited test (each analyte given), also after finalizing. Every value
    is checked before any is stored; a problem shows beside its field. A GET (the refusal page reloaded, or
    the language switched on it) leads back to the results on the workup page."""
    from datetime import date

    from django.db import transaction

    actor = _actor(request)
    if request.method != "POST":
        encounter = record_selectors.encounter_get(actor=actor, encounter_id=pk)
        return redirect(reverse("encounter-workup", args=[encounter.pk]) + "#results")
    encounter = record_selectors.encounter_get(actor=actor, encounter_id=pk, action="open_for_update")
    vocabulary = current_kb().vocabulary
    test = request.POST.get("test", "")
    codes = services.result_codes_by_test().get(test, [])
    posted = {"test": test, "performed_on": request.POST.get("performed_on", ""), "note": request.POST.get("note", "")}
    errors: dict = {}
    values = {}
    for code in codes:
        posted[code] = request.POST.get(code, "")
        value, problem = parse_result_value(vocabulary.results[code], posted[code])
        if problem:
            errors[code] = [problem]
        elif value is not None:
            values[code] = value
    performed_on = None
    if posted["performed_on"].strip():
        try:
            performed_on = date.fromisoformat(posted["performed_on"].strip())
        except ValueError:
            errors["performed_on"] = [_("Use the date picker (YYYY-MM-DD).")]
    if not codes:
        errors[None] = [_("Choose a test awaiting results.")]
    elif not values and not errors:
        errors[None] = [_("Enter at least one value.")]
    for code, value in values.items():
        for field, messages_ in services.result_problems(
            encounter=encounter, code=code, value=value, performed_on=performed_on, note=posted["note"].strip()
        ).items():
            key = code if field in ("value", "code") else field
            errors.setdefault(key, [])
            errors[key].extend(_words(m) for m in messages_ if _words(m) not in errors[key])
    if not errors:
        try:
            with transaction.atomic():
                for code, value in values.items():
                    services.result_enter(
                        actor=actor,
                        encounter=encounter,
                        code=code,
                        value=value,
                        performed_on=performed_on,
                        note=posted["note"],
                    )
        except ValidationError as error:
            errors = _problems(error)
    if errors:
        return _workup_page(request, actor, encounter, result_errors=errors, result_posted=posted)
    messages.success(
        request,
        ngettext("Entered %(count)s result.", "Entered %(count)s results.", len(values)) % {"count": len(values)},
        extra_tags=AT_RESULTS,
    )
    return redirect(reverse("encounter-workup", args=[encounter.pk]) + "#results")


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def result_acknowledge(request, pk):
    """Sign an abnormal result off with the action taken (a note is required). A GET leads back to the result
    on the workup page."""
    actor = _actor(request)
    if request.method != "POST":
        result = selectors.result_get(actor=actor, result_id=pk)
        return redirect(reverse("encounter-workup", args=[result.encounter_id]) + f"#result-{result.pk}")
    result = selectors.result_get(actor=actor, result_id=pk, action="open_for_update")
    encounter = result.encounter
    try:
        services.result_acknowledge(actor=actor, result=result, note=request.POST.get("note", ""))
    except ValidationError as error:
        problems = [message for messages_ in _problems(error).values() for message in messages_]
        return _workup_page(
            request, actor, encounter, acknowledge_errors={result.pk: (problems, request.POST.get("note", ""))}
        )
    except services.NotAcknowledgeable as error:
        messages.error(request, _words(error.message), extra_tags=AT_RESULTS)
    else:
        messages.success(request, _("Result acknowledged."), extra_tags=AT_RESULTS)
    return redirect(reverse("encounter-workup", args=[encounter.pk]) + "#results")


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def results_acknowledge(request, pk):
    """Sign the ticked abnormal results of an encounter off with one note, all or none; refused, the page
    comes back with the problems, the ticks and the note as they were. A GET leads back to the form."""
    actor = _actor(request)
    if request.method != "POST":
        encounter = record_selectors.encounter_get(actor=actor, encounter_id=pk)
        return redirect(reverse("encounter-workup", args=[encounter.pk]) + "#acknowledge-selected")
    encounter = record_selectors.encounter_get(actor=actor, encounter_id=pk, action="open_for_update")
    note = request.POST.get("note", "")
    ids = [int(value) for value in request.POST.getlist("results") if value.isascii() and value.isdigit()]
    errors, conflicts = {}, {}
    if len(ids) != len(request.POST.getlist("results")):
        errors["results"] = [_("Choose results from the list.")]
    else:
        try:
            acknowledged = services.results_acknowledge(actor=actor, encounter=encounter, results=ids, note=note)
        except ValidationError as error:
            errors = _problems(error)
        except services.NotAcknowledgeable as error:
            conflicts = error.problems
    if errors or conflicts:
        posted = {"ids": set(ids), "note": note, "errors": errors, "conflicts": conflicts}
        return _workup_page(request, actor, encounter, acknowledge_posted=posted)
    messages.success(
        request,
        ngettext("Result acknowledged: %(count)s.", "Results acknowledged: %(count)s.", len(acknowledged))
        % {"count": len(acknowledged)},
        extra_tags=AT_RESULTS,
    )
    return redirect(reverse("encounter-workup", args=[encounter.pk]) + "#results")


def _representation_groups(result):
    grouped = []
    for key, title in GROUPS:
        rows = [item for item in result["items"] if item["category"] == key]
        if rows:
            grouped.append({"key": key, "title": title, "items": rows})
    return grouped


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def workup_review_page(request, pk):
    """POST: store the follow-up workup (findings plus results); GET: it beside the first workup, new
    rows marked, its rows decidable (after finalizing too: only the follow-up's)."""
    actor = _actor(request)
    encounter = record_selectors.encounter_get(
        actor=actor, encounter_id=pk, action="view" if request.method in ("GET", "HEAD") else "open_for_update"
    )
    if request.method == "POST":
        try:
            created = services.workup_review(actor=actor, encounter=encounter)[1]
        except ValidationError as error:
            for messages_ in _problems(error).values():
                for message in messages_:
                    messages.error(request, message, extra_tags=AT_RESULTS)
            return redirect(reverse("encounter-workup", args=[encounter.pk]) + "#results")
        except RecordLocked as error:
            messages.error(request, error.message)
            return redirect("encounter-workup", pk=encounter.pk)
        messages.success(
            request,
            _("Follow-up recommendations stored with the results.")
            if created
            else _("Nothing changed since the last review."),
        )
        return redirect("encounter-review", pk=encounter.pk)
    latest = selectors.workup_latest(actor=actor, encounter=encounter)
    follow_up = latest if latest is not None and latest.kind == "follow_up" else None
    initial = selectors.workup_initial(encounter=encounter)
    first = selectors.workup_representation(workup=initial, encounter=encounter) if initial else None
    second = selectors.workup_representation(workup=follow_up, encounter=encounter) if follow_up else None
    stored = selectors.results_of_encounter(actor=actor, encounter=encounter)
    current = [selectors.result_row(result) for result in stored if result.superseded_at is None]
    return render(
        request,
        "workups/review.html",
        {
            "encounter": encounter,
            "patient": encounter.patient,
            "initial": initial,
            "first": first,
            "follow_up": follow_up,
            "second": second,
            "current_results": current,
            "first_groups": _representation_groups(first) if first else [],
            "second_groups": _representation_groups(second) if second else [],
            "vocabulary": current_kb().vocabulary,
            "editable": follow_up is not None,
        },
    )

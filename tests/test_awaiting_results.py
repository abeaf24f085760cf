"""What awaits its result is stored on the test (WorkupItem.awaiting_since) and kept by the services, so that the
worklist reads only the open rows: whatever a GP does to an encounter, in any order, the stored state is the one
the rule gives (accepted, in the latest workup, answerable, not answered by a current result), and the upgrade
fills it in for the rows that were there before."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from clinic.errors import RecordLocked
from clinic.models import Encounter
from tests.record_factories import URINARY, accept_tests, actor_for, encounter_of, screened, workup_for
from workups.engine import get_knowledge_base
from workups.models import Decision, Result, Workup, WorkupItem
from workups.services import (
    recommendation_decide,
    result_enter,
    workup_current,
    workup_item_add,
    workup_review,
)

# Values inside every reference's plausible range (they are refused otherwise, and the refusal is not under test).
VALUES = {
    "res_hemoglobin": 130,
    "res_wbc": 6,
    "res_esr": 10,
    "res_crp": 2,
    "res_egfr": 95,
    "res_nech_leukocytes": 1500,
    "res_ua_nitrite": False,
    "img_root_compression": True,
}
HAND_ADDED = ["lab_biochemistry", "mri_lumbar_spine", "lab_crp_esr", "ecg"]
FINDINGS = [screened(URINARY), screened({"loc_lumbar": True, "sx_urinary_frequency": True})]


def expected_awaiting(encounter) -> dict[int, object]:
    """The rule read plainly off the rows: each test of the encounter and when it started awaiting (None: not)."""
    answers: dict[str, set[str]] = {}
    for code, meta in get_knowledge_base().vocabulary.results.items():
        for item in meta["items"]:
            answers.setdefault(item, set()).add(code)
    workups = sorted(Workup.objects.filter(encounter=encounter), key=lambda workup: (workup.created_at, workup.pk))
    current = set(Result.objects.filter(encounter=encounter, superseded_at=None).values_list("code", flat=True))
    expected = {}
    for workup in workups:
        for item in workup.items.all():
            awaiting = (
                workup == workups[-1]
                and item.decision == Decision.ACCEPTED
                and item.code in answers
                and not answers[item.code] & current
            )
            expected[item.pk] = (item.decided_at or workup.created_at) if awaiting else None
    return expected


def stored_awaiting(encounter) -> dict[int, object]:
    return dict(WorkupItem.objects.filter(workup__encounter=encounter).values_list("pk", "awaiting_since"))


operations = st.lists(
    st.one_of(
        st.tuples(st.just("decide"), st.integers(0, 9), st.sampled_from(Decision.values)),
        st.tuples(st.just("result"), st.sampled_from(sorted(VALUES))),
        st.tuples(st.just("review")),
        st.tuples(st.just("add"), st.sampled_from(HAND_ADDED)),
        st.tuples(st.just("findings"), st.integers(0, len(FINDINGS) - 1)),
        st.tuples(st.just("finalize")),
    ),
    max_size=12,
)


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(steps=operations)
def test_whatever_the_gp_does_the_stored_awaiting_state_is_the_rules(gp, steps):
    from clinic.services import encounter_lock

    actor = actor_for(gp)
    encounter = encounter_of(gp, findings=FINDINGS[0])
    accept_tests(gp, workup_for(gp, encounter))
    assert stored_awaiting(encounter) == expected_awaiting(encounter) != {}
    for step in steps:
        encounter.refresh_from_db()
        latest = encounter.workups.order_by("-created_at", "-id").first()
        try:
            if step[0] == "decide":
                items = list(latest.items.all())
                if items:
                    item = items[step[1] % len(items)]
                    reason = "Not needed" if step[2] == Decision.DECLINED else ""
                    recommendation_decide(actor=actor, recommendation=item, decision=step[2], reason=reason)
            elif step[0] == "result":
                result_enter(actor=actor, encounter=encounter, code=step[1], value=VALUES[step[1]])
            elif step[0] == "review":
                workup_review(actor=actor, encounter=encounter)
            elif step[0] == "add":
                workup_item_add(actor=actor, workup=latest, code=step[1])
            elif step[0] == "findings" and not encounter.is_finalized:
                Encounter.objects.filter(pk=encounter.pk).update(findings=FINDINGS[step[1]])
                encounter.refresh_from_db()
                workup_current(actor=actor, encounter=encounter)  # regenerates the draft's workup when it changed
            elif step[0] == "finalize" and not encounter.is_finalized:
                encounter_lock(actor=actor, encounter=encounter)
        except (RecordLocked, ValidationError):
            pass  # refused: what was stored must be unchanged, and still the rule's
        assert stored_awaiting(encounter) == expected_awaiting(encounter), step


def test_a_result_takes_its_test_off_the_awaited_and_another_workup_takes_the_earlier_ones(gp):
    actor = actor_for(gp)
    encounter = encounter_of(gp, findings=screened(URINARY))
    workup = accept_tests(gp, workup_for(gp, encounter))
    awaiting = set(workup.items.filter(awaiting_since__isnull=False).values_list("code", flat=True))
    assert {"lab_urinalysis", "lab_cbc"} <= awaiting

    result_enter(actor=actor, encounter=encounter, code="res_ua_nitrite", value=False)
    now = set(workup.items.filter(awaiting_since__isnull=False).values_list("code", flat=True))
    assert now == awaiting - {"lab_urinalysis"}

    follow_up, _ = workup_review(actor=actor, encounter=encounter)
    assert not workup.items.filter(awaiting_since__isnull=False).exists()  # the follow-up is the latest now
    assert set(follow_up.items.filter(awaiting_since__isnull=False).values_list("code", flat=True)) == now


def test_results_and_tests_keep_their_encounters_clinic(gp, other_gp):
    for user in (gp, other_gp):
        encounter = encounter_of(user, findings=screened(URINARY))
        workup = accept_tests(user, workup_for(user, encounter))
        result = result_enter(actor=actor_for(user), encounter=encounter, code="res_crp", value=2)
        assert result.clinic_id == encounter.clinic_id
        assert set(workup.items.values_list("clinic_id", flat=True)) == {encounter.clinic_id}


@pytest.mark.django_db(transaction=True)
def test_the_upgrade_fills_in_the_clinics_and_the_awaited_tests_of_the_rows_already_there(gp, other_gp):
    expected = {}
    for user in (gp, other_gp):
        actor = actor_for(user)
        encounter = encounter_of(user, findings=screened(URINARY))
        accept_tests(user, workup_for(user, encounter))
        result_enter(actor=actor, encounter=encounter, code="res_ua_nitrite", value=False)
        second = encounter_of(user, findings=screened(URINARY))
        accept_tests(user, workup_for(user, second))
        result_enter(actor=actor, encounter=second, code="res_crp", value=2)
        workup_review(actor=actor, encounter=second)  # the first workup's tests are no longer awaited
        for each in (encounter, second):
            expected[each.pk] = expected_awaiting(each)
    stored = {
        "items": set(WorkupItem.objects.values_list("pk", "clinic_id")),
        "results": set(Result.objects.values_list("pk", "clinic_id")),
    }
    assert any(since is not None for each in expected.values() for since in each.values())

    executor = MigrationExecutor(connection)
    executor.migrate([("workups", "0004_labels")])  # before the columns were there: they are dropped
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes("workups"))

    for encounter_id, awaiting in expected.items():
        assert stored_awaiting(encounter_id) == awaiting
    assert set(WorkupItem.objects.values_list("pk", "clinic_id")) == stored["items"]
    assert set(Result.objects.values_list("pk", "clinic_id")) == stored["results"]


def test_refresh_awaited_tests_puts_right_what_a_changed_vocabulary_left_stale(gp):
    from io import StringIO

    from django.core.management import call_command

    encounter = encounter_of(gp, findings=screened(URINARY))
    workup = accept_tests(gp, workup_for(gp, encounter))
    expected = expected_awaiting(encounter)
    # As a knowledge base upgrade leaves it: the stored state written under another vocabulary.
    WorkupItem.objects.filter(workup=workup).update(awaiting_since=None)
    assert stored_awaiting(encounter) != expected

    out = StringIO()
    call_command("refresh_awaited_tests", stdout=out)

    assert stored_awaiting(encounter) == expected
    assert (
        out.getvalue().strip()
        == f"{sum(since is not None for since in expected.values())} accepted tests await their results."
    )


@pytest.mark.django_db(transaction=True)
def test_a_decision_and_a_result_at_the_same_moment_leave_the_rule_s_state(gp):
    """A GP accepts a test while a colleague enters its result for the same encounter. Each write works out what
    awaits a result from what it can see; were they to overlap, the decision's transaction, committing last,
    would leave the test awaiting a result it already has. Every such write takes the encounter's lock first,
    so the result's waits for the decision to commit."""
    import threading

    from django.db import connection, connections, transaction

    from tests.processes import wait_for

    encounter = encounter_of(gp, findings=screened(URINARY))
    test = workup_for(gp, encounter).items.get(code="lab_urinalysis")
    decided, commit = threading.Event(), threading.Event()
    entered = threading.Event()
    failures = []

    def decide():
        try:
            with transaction.atomic():
                recommendation_decide(actor=actor_for(gp), recommendation=test, decision=Decision.ACCEPTED)
                decided.set()
                commit.wait(timeout=30)
        except Exception as error:  # reported by the test below
            failures.append(error)
        finally:
            connections.close_all()

    def enter():
        try:
            result_enter(actor=actor_for(gp), encounter=encounter, code="res_ua_nitrite", value=False)
            entered.set()
        except Exception as error:
            failures.append(error)
        finally:
            connections.close_all()

    def result_waits_for_a_lock():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            return cursor.fetchone()[0] > 0

    first = threading.Thread(target=decide)
    first.start()
    wait_for(decided.is_set, timeout=30, what="the decision, not yet committed")
    second = threading.Thread(target=enter)
    second.start()
    # Either the result waits for the decision's lock (as it must), or it got through first (the race).
    wait_for(lambda: entered.is_set() or result_waits_for_a_lock(), timeout=30, what="the result to wait or finish")
    commit.set()
    first.join(timeout=30)
    second.join(timeout=30)

    assert not failures
    assert stored_awaiting(encounter) == expected_awaiting(encounter)
    assert WorkupItem.objects.get(pk=test.pk).awaiting_since is None  # answered by the result

"""Reads of patient data, clinic-scoped and audit-logged.

Another clinic's record is a 404, exactly like a record that does not exist,
so nothing (not even its existence) leaks across clinics.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.db.models.functions import Collate, Concat
from django.db.models.lookups import Contains
from django.http import Http404

from clinic.audit import Actor, audit_record
from clinic.identifiers import digits_only
from clinic.models import Encounter, Patient
from clinic.spellings import cyrillic_spellings, layout_swapped
from clinic.text import SUBSTRING_MIN, search_key


def _scoped_patients(actor: Actor) -> QuerySet[Patient]:
    if actor.clinic is None:
        return Patient.objects.none()
    return Patient.objects.filter(clinic=actor.clinic)


def _byte_order(expression):
    # Names in byte order (PostgreSQL's "C" collation; SQLite compares bytes already): the order of the index
    # (clinic, name_search, id) of migration 0013, in which the names starting with a word are one range.
    return Collate(expression, "C") if connection.vendor == "postgresql" else expression


class FirstWordStarts(Case):
    """The first key of a search's order: 0 for the names that start with the first word (the family name begins
    with it: "ива" → Иванов, Ивашкин), 1 for those that hold it only inside (Петров Иван, Сивак). A GP types the
    family name first, so its matches come first. patient_rows and patient_page read a queryset ordered by it
    as two parts: the names starting with the word are a range of the name index, read in its order up to the
    page; only the rest, the names holding it inside, are found through the trigram index and sorted."""

    def __init__(self, word: str):
        self.word = word
        super().__init__(When(name_key__startswith=word, then=Value(0)), default=Value(1))


def patient_queryset(*, actor: Actor, search: str | None = None, birth_date=None) -> QuerySet[Patient]:
    """Patients of the actor's clinic in name order; `search` matches names in any script and case: a word of
    three letters or more anywhere in the name, a shorter one at the start of the family name (the first word)
    or of a later part of the name (clinic.text.SUBSTRING_MIN). When the first word has three letters or more,
    the names starting with it come first, then those holding it inside, each in name order (FirstWordStarts);
    page it with patient_page or patient_rows, which read the first part as a range of the name index."""
    patients = _scoped_patients(actor)
    # A control character (a NUL from %00) can be in no name, and PostgreSQL refuses NUL in a query.
    search = "".join(char for char in (search or "") if ord(char) >= 32)
    digits = digits_only(search)
    if digits.isdigit() and len(digits) in (11, 16):
        # A SNILS (11 digits) or an OMS policy (16), however it was typed.
        patients = patients.filter(Q(snils=digits) | Q(oms_policy=digits))
        search = ""
    words = search_key(search or "").split()
    patients = patients.alias(name_key=_byte_order(F("name_search")))
    for position, word in enumerate(words):
        if len(word) >= SUBSTRING_MIN:
            patients = patients.filter(name_search__contains=word)  # the trigram index
        elif position == 0:
            patients = patients.filter(name_key__startswith=word)  # a range of the name index
        else:
            patients = patients.filter(name_search__contains=f" {word}")
    if birth_date is not None:
        patients = patients.filter(birth_date=birth_date)
    if any(len(word) >= SUBSTRING_MIN for word in words):
        # The matches are found through the trigram index and then sorted: in an order no index holds, so that
        # PostgreSQL never walks the name index in order testing each name, which is unbounded when the matches
        # come late in the alphabet (900,000 names for one page at 1.1 M patients). Bounded by the matches, as
        # the count is.
        by_name = (_byte_order(Concat("name_search", Value(""))), "id")
        if len(words[0]) >= SUBSTRING_MIN:
            return patients.order_by(FirstWordStarts(words[0]), *by_name)
        return patients.order_by(*by_name)  # a short first word is a range already
    return patients.order_by("name_key", "id")


def patient_search(*, actor: Actor, search: str = "", birth_date=None, snils: str = "", oms_policy: str = ""):
    """Patients of the actor's clinic matching every term given: parts of names (or a SNILS or policy typed as
    the search), the birth date, and the SNILS and OMS policy as digits."""
    patients = patient_queryset(actor=actor, search=search, birth_date=birth_date)
    if snils:
        patients = patients.filter(snils=snils)
    if oms_policy:
        patients = patients.filter(oms_policy=oms_policy)
    return patients


# The patient lists count their matches up to this many and no further: a count visits every match, and a common
# word of three letters is inside tens of thousands of names at clinic scale ("ива": 39,683 of 600,000, 37 ms).
# Past it, a list says "more than" and still pages on (tests lower it with monkeypatch).
PATIENT_COUNT_LIMIT = 1000


@dataclass
class PatientPage:
    """A page of a patient list whose count stops at PATIENT_COUNT_LIMIT: `count` is exact up to it; past it,
    `count` is the limit and `count_is_lower_bound` is true. `has_next` says whether a further patient exists
    (the page reads one patient more than it shows), whatever the count."""

    object_list: list
    number: int
    size: int
    count: int
    count_is_lower_bound: bool
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_other_pages(self) -> bool:
        return self.has_next or self.has_previous

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def previous_page_number(self) -> int:
        return self.number - 1

    @property
    def num_pages(self) -> int | None:
        """None when the count is a lower bound: the pages are not all known."""
        return None if self.count_is_lower_bound else max(1, -(-self.count // self.size))


def _parts(patients: QuerySet[Patient]) -> tuple[QuerySet[Patient], QuerySet[Patient]] | None:
    """A search ranked by its first word (FirstWordStarts) as its two parts, each in name order: the names
    starting with the word (a range of the name index, read in its order) and those holding it only inside
    (found through the trigram index and sorted). None for any other order."""
    ordering = patients.query.order_by
    if not (ordering and isinstance(ordering[0], FirstWordStarts)):
        return None
    word = ordering[0].word
    starting = patients.filter(name_key__startswith=word).order_by("name_key", "id")
    # Starting with the word implies holding it, but PostgreSQL estimates the two filters as independent: with
    # "contains" kept, it expects a handful of matches in the range and finds and sorts them all through the
    # trigram index ("иванова": 9,744 names, 25 ms) instead of reading the range's first 26 (0.1 ms).
    field = Patient._meta.get_field("name_search")
    starting.query.where.children = [
        child
        for child in starting.query.where.children
        if not (isinstance(child, Contains) and getattr(child.lhs, "target", None) == field and child.rhs == word)
    ]
    inside = patients.exclude(name_key__startswith=word).order_by(*ordering[1:])
    return starting, inside


def _slice_parts(parts, offset: int, limit: int) -> tuple[list[Patient], int | None, int | None]:
    """Rows offset .. offset + limit of the two parts read one after the other, and each part's size when the
    reads tell it (None when not): at most three queries."""
    starting, inside = parts
    # The range is walked in the index alone (it holds the name), testing any other word on each entry, and only
    # the page's rows are then read from the table, by id: for a whole page read at once PostgreSQL picks a walk
    # reading every row on the way, or the trigram index ("васильев александр": 23 ms; 0.3 ms so). The ids
    # are the queryset's (its clinic, its filters); the rows are plain patients, in the same order.
    page = starting.values("pk")[offset : offset + limit]
    rows = list(Patient.objects.filter(pk__in=page).order_by(_byte_order(F("name_search")), "id"))
    if len(rows) == limit:
        return rows, None, None
    if rows or offset == 0:
        starting_count = offset + len(rows)
    else:
        # The page is past the names starting with the word: there are at most `offset` of them to count.
        starting_count = starting.order_by()[:offset].count()
    start, wanted = max(0, offset - starting_count), limit - len(rows)
    more = list(inside[start : start + wanted])
    inside_count = start + len(more) if len(more) < wanted and (more or start == 0) else None
    return rows + more, starting_count, inside_count


def patient_rows(*, patients: QuerySet[Patient], offset: int, limit: int) -> list[Patient]:
    """patients[offset : offset + limit] in the queryset's order; a search ranked by its first word is read in
    its two parts, so that a common word's page never visits and sorts every match ("ива" is inside 39,683 names
    at 1 M patients): the names starting with it stop at the page's end. At most three queries."""
    parts = _parts(patients)
    if parts is None:
        return list(patients[offset : offset + limit])
    return _slice_parts(parts, offset, limit)[0]


def _ranked_count(*, starting: QuerySet[Patient], patients: QuerySet[Patient], limit: int) -> int:
    """The matches counted up to limit + 1, in one query: the names starting with the word first, a walk of the
    name index's range (0.2 ms for 1,001 entries), and every match only when those are not more than the limit
    (through the trigram index, as any search's count). PostgreSQL runs a CASE's sub-select only when its branch
    is taken. (A count of the inside part alone, limited to what is left, made PostgreSQL walk the whole name
    index for a word inside no name: 98 ms.)"""
    try:
        starting_sql, starting_params = starting.order_by().values("pk")[: limit + 1].query.sql_with_params()
        every_sql, every_params = patients.order_by().values("pk")[: limit + 1].query.sql_with_params()
    except EmptyResultSet:
        return 0
    with connection.cursor() as cursor:
        # The two sub-selects are Django's compiled querysets, their values passed apart as parameters.
        sql = (
            f"SELECT CASE WHEN (SELECT COUNT(*) FROM ({starting_sql}) starting) > %s THEN %s "  # noqa: S608
            f"ELSE (SELECT COUNT(*) FROM ({every_sql}) every) END"
        )
        cursor.execute(sql, [*starting_params, limit, limit + 1, *every_params])
        return cursor.fetchone()[0]


def patient_page(*, patients: QuerySet[Patient], number: int, size: int) -> PatientPage:
    """Page `number` (from 1) of `size` patients, and their count up to PATIENT_COUNT_LIMIT: two queries (the rows,
    the count) however many match; a search ranked by its first word takes one more on the page that reaches from
    the names starting with it into the rest, two more past them."""
    offset = (number - 1) * size
    limit = PATIENT_COUNT_LIMIT
    parts = _parts(patients)
    if parts is None:
        rows = list(patients[offset : offset + size + 1])
        # Unordered, so that PostgreSQL may stop after limit + 1 matches in whatever order it finds them.
        count = patients.order_by()[: limit + 1].count()
    else:
        rows, starting_count, inside_count = _slice_parts(parts, offset, size + 1)
        if starting_count is not None and inside_count is not None:
            count = starting_count + inside_count  # the page read both parts to their end
        else:
            count = _ranked_count(starting=parts[0], patients=patients, limit=limit)
    return PatientPage(
        object_list=rows[:size],
        number=number,
        size=size,
        count=min(count, limit),
        count_is_lower_bound=count > limit,
        has_next=len(rows) > size,
    )


# The Latin readings tried at most: a name has one or two ambiguous places (Olga, Maria), and each reading that
# finds nobody costs the search two queries.
SPELLINGS_MOST = 6


@dataclass(frozen=True)
class Respelled:
    spelling: str
    kind: str  # "layout": the same keys on the other keyboard layout; "latin": a Latin name read into Cyrillic
    patients: object
    page: object


def patient_page_respelled(*, actor: Actor, search: str, birth_date=None, number: int, size: int):
    """For a name search that found no patient: the first other spelling of it that finds patients of the actor's
    clinic (with that birth date), as a Respelled (the spelling, its kind, its queryset, its page `number`), or
    None: the keys typed on the other keyboard layout ("Bdfyjdf" → Иванова), then a name in Latin letters read
    back into Cyrillic (Shcherbakova → Щербакова; Olga → Олга, then Ольга). Each spelling tried costs a page (two
    queries when it finds nobody). The browser's search only: an EHR's search (the API, FHIR) matches exactly what
    it sent."""
    tried = {search_key(search)}
    spellings = [("layout", layout_swapped(search))]
    spellings += [("latin", spelling) for spelling in cyrillic_spellings(search, most=SPELLINGS_MOST)]
    for kind, spelling in spellings:
        if spelling is None or search_key(spelling) in tried:
            continue
        tried.add(search_key(spelling))
        # A page, not exists(): "LIKE '%гусев%' LIMIT 1" walks the name index testing each name until one matches
        # (30-75 ms at 600,000 patients), where the page reads a range of it and the trigram index.
        patients = patient_queryset(actor=actor, search=spelling, birth_date=birth_date)
        page = patient_page(patients=patients, number=number, size=size)
        if page.count:
            return Respelled(spelling=spelling, kind=kind, patients=patients, page=page)
    return None


def search_kinds(*, search=None, birth_date=None, snils=None, oms_policy=None, **others) -> list[str]:
    """The kinds of term a patient search used, for the audit trail (never the terms): "name", "snils" or
    "policy" for the search text (a SNILS or policy number typed there, as patient_queryset reads it),
    "birth_date", "snils", "policy", and the name of any other term given (an EHR's "identifier", "id")."""
    kinds = set()
    text = "".join(char for char in (search or "") if ord(char) >= 32).strip()
    if text:
        digits = digits_only(text)
        number = digits.isdigit() and len(digits) in (11, 16)
        kinds.add(("snils" if len(digits) == 11 else "policy") if number else "name")
    for kind, value in (("birth_date", birth_date), ("snils", snils), ("policy", oms_policy), *others.items()):
        if value not in (None, ""):
            kinds.add(kind)
    return sorted(kinds)


def patients_listed(*, actor: Actor, patients, searched: bool = False, kinds=()) -> None:
    """Record that a list (or search result) of patients was shown: a search names the kinds of term it used
    as the object id ("birth_date,name"), never the terms."""
    audit_record(
        actor=actor,
        action="search" if searched or kinds else "list",
        object_type="patient",
        object_id=",".join(kinds),
        patient_ids=[patient.pk for patient in patients],
    )


def patient_get(*, actor: Actor, patient_id, action: str = "view") -> Patient:
    try:
        patient = _scoped_patients(actor).get(pk=patient_id)
    except (Patient.DoesNotExist, ValueError, TypeError):
        raise Http404("No such patient.") from None
    audit_record(actor=actor, action=action, object_type="patient", object_id=patient.pk, patient_id=patient.pk)
    return patient


def encounters_of_patient(*, actor: Actor, patient: Patient) -> QuerySet[Encounter]:
    """The patient's encounters, newest first (the patient's page adds each one's latest disposition:
    workups.selectors.encounters_with_disposition)."""
    encounters = (
        Encounter.objects.filter(clinic=actor.clinic, patient=patient)
        .select_related("clinician")
        .order_by("-visit_date", "-id")
    )
    audit_record(actor=actor, action="list", object_type="encounter", patient_id=patient.pk)
    return encounters


def encounter_get(*, actor: Actor, encounter_id, action: str = "view") -> Encounter:
    if actor.clinic is None:
        raise Http404("No such encounter.")
    try:
        encounter = Encounter.objects.select_related("patient", "clinician").get(pk=encounter_id, clinic=actor.clinic)
    except (Encounter.DoesNotExist, ValueError, TypeError):
        raise Http404("No such encounter.") from None
    audit_record(
        actor=actor, action=action, object_type="encounter", object_id=encounter.pk, patient_id=encounter.patient_id
    )
    return encounter

"""The house's layers: arrows run only downward, and no two modules import each other in a circle.

From the ground up: the engine (workups.engine, pure) → the record (clinic) → stored workups and
decisions (workups) → letters and documents (referrals) → EHR integration (ehr) → project wiring (config).
A module may import from its own layer or a lower one. Every import counts, the ones inside a function
too: a function-level import that points up, or closes a circle, is the same debt, only hidden.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (package prefix, height): the longest matching prefix decides a module's layer.
LAYERS = {
    "workups.engine": 0,
    "clinic": 1,
    "workups": 2,
    "referrals": 3,
    "ehr": 4,
    "config": 5,
}
PACKAGES = ("config", "clinic", "workups", "referrals", "ehr")


def layer_of(module: str) -> int | None:
    """The height of a module's layer, or None for a module outside the house (Django, the standard library)."""
    matches = [prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")]
    return LAYERS[max(matches, key=len)] if matches else None


def project_modules(root: Path = ROOT, packages=PACKAGES) -> dict[str, Path]:
    """Module name → source file, for every module of the packages (migrations and commands too)."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imported_modules(source: str, *, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The project modules that `source` imports anywhere in it (top level, functions, TYPE_CHECKING blocks).

    `from package import name` points at the submodule package.name when there is one, at the package
    otherwise; a relative import is resolved against the importing module."""
    found = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module
            targets = [
                f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in known else origin for alias in node.names
            ]
        else:
            continue
        for target in targets:
            # `import a.b.c` of a module not in the house is skipped; one in the house resolves to itself
            # or its nearest known package.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != module:
                found.add(target)
    return found


def import_graph(root: Path = ROOT, packages=PACKAGES) -> dict[str, set[str]]:
    modules = project_modules(root, packages)
    known = set(modules)
    return {
        name: imported_modules(
            path.read_text(encoding="utf-8"), module=name, is_package=path.name == "__init__.py", known=known
        )
        for name, path in modules.items()
    }


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(importer, imported) for every arrow that points to a higher layer."""
    return sorted(
        (importer, imported)
        for importer, targets in graph.items()
        for imported in targets
        if layer_of(importer) is not None and layer_of(imported) is not None and layer_of(imported) > layer_of(importer)
    )


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    counter = 0
    nodes = sorted(set(graph) | {target for targets in graph.values() for target in targets})
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return sorted(components)


# -- the checker itself, on graphs small enough to see ------------------------------------------------


def test_the_checker_finds_an_arrow_pointing_up_and_not_one_pointing_down():
    graph = {
        "clinic.services": {"workups.services", "workups.engine"},  # up to the workups: wrong; the engine: fine
        "workups.services": {"clinic.models"},
        "referrals.web": {"workups.selectors", "clinic.selectors"},
        "workups.engine.loader": {"workups.engine.conditions"},
    }
    assert upward_imports(graph) == [("clinic.services", "workups.services")]


def test_the_engine_is_below_the_record_and_config_is_on_top():
    assert layer_of("workups.engine.loader") < layer_of("clinic.models") < layer_of("workups.models")
    assert layer_of("workups.models") < layer_of("referrals.tasks") < layer_of("ehr.fhir") < layer_of("config.urls")
    assert layer_of("django.db") is None


def test_the_checker_finds_a_circle_and_leaves_a_chain_alone():
    graph = {
        "referrals.services": {"referrals.tasks", "clinic.models"},
        "referrals.tasks": {"referrals.services"},
        "workups.web": {"workups.selectors"},
        "workups.selectors": {"workups.models"},
        "a": {"b"},
        "b": {"c"},
        "c": {"a"},
    }
    assert import_cycles(graph) == [["a", "b", "c"], ["referrals.services", "referrals.tasks"]]
    assert import_cycles({"x": {"y"}, "y": {"z"}}) == []


def test_the_checker_sees_imports_inside_functions_and_resolves_submodules_and_relative_ones():
    known = {"clinic", "clinic.selectors", "clinic.web", "workups", "workups.models", "workups.engine"}
    source = (
        "from clinic import selectors\n"
        "from . import web\n"
        "import workups.engine.loader\n"
        "import django.db\n"
        "def view():\n"
        "    from workups.models import Workup\n"
    )
    assert imported_modules(source, module="clinic.summary", is_package=False, known=known) == {
        "clinic.selectors",
        "clinic.web",
        "workups.engine",
        "workups.models",
    }


def test_the_checker_reads_a_real_tree_on_disk(tmp_path):
    (tmp_path / "clinic").mkdir()
    (tmp_path / "clinic" / "__init__.py").write_text("")
    (tmp_path / "clinic" / "models.py").write_text("def f():\n    from workups import services\n")
    (tmp_path / "workups").mkdir()
    (tmp_path / "workups" / "__init__.py").write_text("")
    (tmp_path / "workups" / "services.py").write_text("from clinic.models import f\n")
    graph = import_graph(tmp_path, ("clinic", "workups"))
    assert upward_imports(graph) == [("clinic.models", "workups.services")]
    assert import_cycles(graph) == [["clinic.models", "workups.services"]]


# -- the house ------------------------------------------------------------------------------------------


def test_every_module_of_the_house_is_seen():
    graph = import_graph()
    for module in ("clinic.models", "workups.engine.loader", "workups.services", "referrals.tasks", "config.urls"):
        assert module in graph
    assert "workups.models" in graph["workups.services"]


def test_no_module_imports_from_a_higher_layer():
    assert upward_imports(import_graph()) == []


def test_no_modules_import_each_other_in_a_circle():
    assert import_cycles(import_graph()) == []


# -- a page of a lower layer that a higher one adds to ------------------------------------------------------


def test_a_gp_sees_on_the_workup_page_the_letters_that_the_referrals_add_to_it(gp):
    """The workups don't import the letters: referrals registers its section of the workup page at start-up."""
    from django.test import Client

    from referrals.services import referral_create
    from tests.record_factories import actor_for, encounter_of, workup_for
    from workups.services import workup_referral_add

    client = Client()
    client.force_login(gp)
    encounter = encounter_of(gp)
    referral = workup_referral_add(
        actor=actor_for(gp, channel="web"), workup=workup_for(gp, encounter), specialty="rheumatology"
    )
    page = client.get(f"/encounters/{encounter.pk}/workup/").content.decode()
    row = page[page.index(f'id="referral-{referral.pk}"') :]
    assert 'class="letter"' in row[: row.index("</li>")]  # accepted and no letter yet: "Write the letter"
    assert "No letters yet" in page

    letter = referral_create(actor=actor_for(gp, channel="web"), encounter=encounter, recommendation=referral)
    page = client.get(f"/encounters/{encounter.pk}/workup/").content.decode()
    row = page[page.index(f'id="referral-{referral.pk}"') :]
    assert 'class="letter"' not in row[: row.index("</li>")]
    assert f'href="/referrals/{letter.pk}/"' in page and "No letters yet" not in page


def test_the_beat_sends_only_tasks_a_worker_runs():
    # The services and referrals.tasks share their task names (referrals.dispatch), but the schedule in
    # config/settings.py spells them out: a name that drifted would fail only when the beat first sends it.
    from celery import current_app
    from django.conf import settings

    names = [entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()]
    assert names and all(name in current_app.tasks for name in names), names

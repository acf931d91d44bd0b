"""Shared fixtures: the dev stack's config and program runs under the recording mock engine. Upstream reference
data comes from tools/refdata.py (`refdata.load(name)`: committed, generated from ../shared/reference), never
from ../shared itself, which a user's clone does not have."""
from __future__ import annotations

import copy
import gc
import os
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import settings

# Property tests explore the same examples on every run: the suite must not flake between runs (set
# HYPOTHESIS_PROFILE=explore to search with fresh random examples).
settings.register_profile("deterministic", derandomize=True, database=None)
settings.register_profile("explore", max_examples=500, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference"  # only tools/refdata.py's freshness test reads it

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# The slowest files (seconds of CPU, measured), started first when `make test` deals files to workers
# (pytest-xdist --dist loadfile): a slow file dealt last would leave one core idle while it runs.
SLOW_FIRST = ["test_diff.py", "test_deployable.py", "test_stack_files.py", "test_observability.py",
              "test_karpenter.py", "test_config.py", "test_cel_rules.py", "test_advisor.py"]


def pytest_collection_modifyitems(config, items) -> None:
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order within a file kept


def pytest_runtest_teardown(item) -> None:
    """Once a test has imported the Pulumi SDK (hundreds of thousands of long-lived objects), move what is
    alive to the collector's permanent generation: later full collections then skip the SDK instead of
    walking it again every few runs of the program (a third of a run's time, and most of its variance)."""
    global _frozen
    if not _frozen and "pulumi_aws" in sys.modules:
        gc.collect()
        gc.freeze()
        _frozen = True


_frozen = False


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python process, with `extra` added. mutmut's switch (MUTANT_UNDER_TEST) is
    left out: a child that imports a mutated module then runs its original code, where it would otherwise fail
    to find mutmut's settings (they live in make mutate's process). What these children report (what an
    import loads, a whole command's output) is checked elsewhere against the mutants themselves."""
    env = {k: v for k, v in os.environ.items() if k != "MUTANT_UNDER_TEST"}
    return {**env, **extra}


def printed(program: str, **env: str) -> str:
    """What `program` (Python, run from the project root) prints in a fresh interpreter, with `env` added to the
    environment: for what only a new process shows (what an import loads, what `hash()` salting changes)."""
    import subprocess

    return subprocess.run([sys.executable, "-c", program], env=child_env(**env), cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout.strip()


def printed_under_hash_seed(program: str, seed: str) -> str:
    """`printed` in an interpreter whose `hash()` is salted with `seed`: names that must not depend on the
    process are compared across seeds."""
    return printed(program, PYTHONHASHSEED=seed)


def dev_config() -> dict:
    return dict(yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"])


@pytest.fixture
def dev() -> dict:
    """A fresh deep copy of the dev stack config, safe to mutate in a test."""
    return copy.deepcopy(dev_config())


def run(config: dict, preview: bool = True):
    from tools.harness import run_program

    result = run_program(config, preview=preview)
    return result


@pytest.fixture(scope="session")
def dev_runs():
    """The dev stack run once as a preview and once as an update (outputs known): by `make test`'s runner
    (tests/parallel.py) before it forks this worker, else here."""
    warm = getattr(sys.modules.get("__main__"), "DEV_RUNS", None)
    return warm or {"preview": run(dev_config(), True), "up": run(dev_config(), False)}


def edges(registrations) -> dict[str, set[str]]:
    """urn -> the URNs it waits for (dependencies + provider + parent), within the record: created after
    them, deleted before them."""
    known = {r.urn for r in registrations}
    return {r.urn: r.waits_for() & known for r in registrations}


def closure(graph: dict[str, set[str]], urn: str) -> set[str]:
    """Everything `urn` waits for, transitively."""
    seen, todo = set(), [urn]
    while todo:
        for d in graph[todo.pop()] - seen:
            seen.add(d)
            todo.append(d)
    return seen


def run_patched(cls, method: str, wrap, config: dict, preview: bool = False):
    """`config` run with `cls.method` (of the harness's mock engine) replaced by `wrap(original)` for the run: to
    record what the program asks or registers, or to answer an invoke as another account would."""
    from tools.harness import run_program

    original = getattr(cls, method)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cls, method, wrap(original))
        result = run_program(config, preview=preview)
    assert result.error is None, result.error
    return result

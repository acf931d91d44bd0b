"""`make mutate`: mutation testing with mutmut 3, one module at a time.

    python mutation/mutate.py gpu_slicing/karpenter.py    # one module (several may be named: one run each)
    python mutation/mutate.py                             # the mutable modules changed against main
    SLOW=1 python mutation/mutate.py ...                  # the slow tests too (minutes more per module)
    BASE_TESTS=main python mutation/mutate.py ...         # against the tests as they are on main
    TESTS="tests/test_policy*.py" python mutation/mutate.py policy/rules.py   # only these tests (faster)
    ONLY="tools.diff.x_render__mutmut_*" python mutation/mutate.py tools/diff.py   # only these mutants (mutmut's
                                      # names, fnmatch globs): the others are left unrun and count as survived
    python mutation/mutate.py --show MODULE|MUTANT ...    # what each survivor of MODULE (or MUTANT) changed
    python mutation/mutate.py --record MODULE ...         # count the last run again (equivalent.md changed)
    python mutation/mutate.py --survivors MODULE ...      # the last run's survivors again, after adding tests

Each module runs in a work directory of its own, `.mutation/<module>/`: a copy of the project (what the tests
read) beside a link to `../shared`, where mutmut makes `mutants/`: the code with every mutant behind a switch.
mutmut records which tests call each function, then runs each mutant (a one-token change inside a
function) against only those tests, in workers forked from the process that already imported the Pulumi
SDK. Its settings live here (the repository has no pyproject.toml), given to mutmut's config reader.
Afterwards the module's counts go into `mutation/scores.md`; mutants listed in `mutation/equivalent.md`
(with the reason) are not counted against the score; the survivors are printed. mutmut mutates code inside
functions only, and a function that runs only while the module is imported runs before a mutant can be
switched on: a module-level table (a catalog figure, a rule table) is held by tests against its sources.
"""
from __future__ import annotations

import datetime
import glob
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutation"
SCORES = ROOT / "mutation" / "scores.md"
EQUIVALENT = ROOT / "mutation" / "equivalent.md"
PACKAGES = ["gpu_slicing", "components", "tools", "policy"]
TARGET = 85.0  # per cent of non-equivalent mutants a module must keep killed (README, Development)
KILLED = {"killed", "timeout", "caught by type check"}


def copied() -> list[str]:
    """The packages, then everything else the repository tracks at its top level: the program, its stacks, docs,
    locks and settings the tests hold to the code, and this directory (tests/test_mutation_reach.py reads
    `reachable`), so a new top-level file needs no entry here."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return PACKAGES + sorted({p.split("/")[0] for p in tracked.split()} - set(PACKAGES) - {".gitignore"})


def mutable(path: str) -> bool:
    """A module mutmut can mutate: Python under one of the packages, not a package marker."""
    p = Path(path)
    return p.suffix == ".py" and p.parts[0] in PACKAGES and p.name not in ("__init__.py", "__main__.py")


def changed_modules(base: str = "main") -> list[str]:
    out = subprocess.run(["git", "diff", "--name-only", f"{base}...HEAD"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    return sorted(p for p in out.split() if mutable(p) and (ROOT / p).exists())


def workdir(module: str) -> Path:
    return WORK / module[:-3].replace("/", ".")


def settings(module: str | None) -> dict:
    # TESTS: the test files mutmut may choose from (globs, read in the work copy), default all of tests/
    chosen = [p for pat in (os.environ.get("TESTS") or "tests").split() for p in sorted(glob.glob(pat)) or [pat]]
    # the `traces` tests count calls with a profiler, which mutmut's trampolines hide: they cannot judge a mutant
    selection = chosen + ["-m", "not traces" if os.environ.get("SLOW") else "not slow and not traces"]
    return {"source_paths": PACKAGES, "only_mutate": [module] if module else [], "also_copy": copied()[len(PACKAGES):],
            "pytest_add_cli_args_test_selection": selection, "pytest_add_cli_args": ["-p", "no:cacheprovider"],
            # mutmut's CPU-time limit per mutant is 2 x multiplier x (the tests' measured time + constant): the
            # constant pays for the fixtures a worker sets up (a program run each), which the measure leaves out.
            "timeout_multiplier": 5.0, "timeout_constant": 10.0, "use_git_change_detection": False}


def outside_the_program(module: str) -> bool:
    """True when the program (`__main__.py` under the mock engine) never runs `module`: the policy rules and
    the offline tools (not the harness that runs the program)."""
    return module.startswith(("policy/", "tools/")) and module != "tools/harness.py"


def warm_dev_runs(main) -> None:
    """Before mutmut records which tests call what, run the dev stack once (from mutants/, as the tests
    would) and leave it where conftest's `dev_runs` takes it, as tests/parallel.py does: each mutant's
    worker then skips two program runs. Only for modules the program never runs (no mutant there can change
    the run)."""
    import mutmut.__main__ as cli_module

    collect = cli_module.collect_or_load_stats

    def warmed(*args, **kwargs):
        import yaml
        from tools.harness import run_program  # from mutants/: mutmut has put it first on sys.path

        config = dict(yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"])
        main.DEV_RUNS = {"preview": run_program(config, preview=True), "up": run_program(config, preview=False)}
        return collect(*args, **kwargs)

    cli_module.collect_or_load_stats = warmed


class FixtureCalls:
    """pytest plugin for mutmut's stats run: what a fixture's setup calls (a whole program run, for
    `dev_runs` or a module's stack) counts for every test that uses the fixture, not only the first one
    (mutmut credits calls to the test during whose setup they happened). Without it a mutant of code the
    program runs is tried against one test that shares the program's run, not the ones that check it."""

    def __init__(self) -> None:
        self.calls: dict[str, set[str]] = {}

    def pytest_fixture_setup(self, fixturedef, request):  # hookwrapper: see the decorator below
        from mutmut.state import state

        before = set(state()._stats)
        yield
        self.calls.setdefault(fixturedef.argname, set()).update(state()._stats - before)

    def pytest_runtest_teardown(self, item, nextitem) -> None:
        from mutmut.state import state

        for name in getattr(item, "fixturenames", ()):
            state()._stats.update(self.calls.get(name, ()))


class CheapFirst:
    """pytest plugin for the mutants' runs: the selected tests cheapest first (the files that never run the
    program, then by the quick runner's per-file cost, then by each test's measured time), so a mutant a
    quick test kills stops there (mutmut runs with -x) before any file sets up a program run."""

    def pytest_collection_modifyitems(self, items) -> None:
        sys.path.insert(0, str(Path.cwd() / "tests"))
        import parallel
        from mutmut.state import state

        def cost(item):
            name = item.path.name
            spent = state().duration_by_test.get(item.nodeid.removeprefix("mutants/"), 0.0)
            return name not in parallel.WITHOUT_SDK, parallel.SECONDS.get(name, 1.0), spent

        items.sort(key=cost)


def with_fixture_calls() -> None:
    """Add FixtureCalls to the pytest run that collects mutmut's stats (the one given plugins), CheapFirst
    to every run."""
    import pytest
    from mutmut.runners.harness import PytestRunner

    CheapFirst.pytest_collection_modifyitems = pytest.hookimpl(trylast=True)(CheapFirst.pytest_collection_modifyitems)
    FixtureCalls.pytest_fixture_setup = pytest.hookimpl(hookwrapper=True)(FixtureCalls.pytest_fixture_setup)
    FixtureCalls.pytest_runtest_teardown = pytest.hookimpl(tryfirst=True)(FixtureCalls.pytest_runtest_teardown)
    execute = PytestRunner.execute_pytest

    def execute_pytest(self, params, **kwargs):
        kwargs["plugins"] = [*kwargs.get("plugins", []), CheapFirst()] + ([FixtureCalls()] if "plugins" in kwargs else [])
        return execute(self, params, **kwargs)

    PytestRunner.execute_pytest = execute_pytest


def mutmut(module: str | None, *args: str) -> None:
    """One of mutmut's own commands, in this process, with `settings` instead of a pyproject.toml."""
    import mutmut.configuration as configuration

    values = settings(module)
    configuration._config_reader = lambda: (lambda key, default: values.get(key, default))
    configuration.reset_config()
    from mutmut.__main__ import cli

    if args[0] == "run":
        with_fixture_calls()
        if module and outside_the_program(module):
            warm_dev_runs(sys.modules["__main__"])
    try:
        cli(list(args), standalone_mode=False)
    except SystemExit as e:  # mutmut exits on a failed clean run or forced-fail check: that is a failure here
        if e.code:
            raise


CACHES = ("functools.cache", "functools.lru_cache", "lru_cache", "cache")


def reachable(source: str) -> str:
    """`source` as make mutate mutates it: mutmut skips decorated functions, so a getter (`@property def f`) or a
    memoised function (`@functools.lru_cache(...) def f`) alone under its decorator is written as a plain `def f`
    followed by `f = property(f)` or `f = functools.lru_cache(...)(f)`: the same module, with the body mutable
    (the mutant names are the function's own). mutmut forks a worker for each mutant from a process whose
    caches its own test runs filled: a memoised function's cache is emptied in each forked worker, so a mutant
    is called, not a value the original code computed. Done to the work copy only."""
    import ast

    lines = source.splitlines(keepends=True)
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and len(node.decorator_list) == 1:
            d = node.decorator_list[0]
            name = ast.unparse(d.func if isinstance(d, ast.Call) else d)
            if name == "property" or name in CACHES:
                found.append((node, ast.unparse(d), name in CACHES))
    for fn, decorator, cache in sorted(found, key=lambda f: f[0].lineno, reverse=True):  # bottom up: lines hold
        indent, f = " " * fn.col_offset, fn.name
        after = [f"{indent}{f} = {decorator}({f})\n"]
        if cache:
            after.append(f"{indent}__import__('os').register_at_fork(after_in_child={f}.cache_clear)\n")
        lines[fn.end_lineno:fn.end_lineno] = after
        del lines[fn.decorator_list[0].lineno - 1]
    return "".join(lines)


def run_one(module: str) -> None:
    """mutmut on `module` in a fresh copy of the project (mutmut reuses stale results otherwise)."""
    work = workdir(module)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in copied():
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, work / name, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, work / name)
    base = os.environ.get("BASE_TESTS")
    if base:  # the suite as it is at another ref (e.g. BASE_TESTS=main: the score before a branch's tests)
        shutil.rmtree(work / "tests")
        archive = subprocess.run(["git", "archive", base, "tests"], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
    (work / module).write_text(reachable((work / module).read_text()))
    if (ROOT.parent / "shared").is_dir():  # the tests read ../shared beside the project: mutants/../shared
        (work / "shared").symlink_to(ROOT.parent / "shared")
    os.chdir(work)
    mutmut(module, "run", "--max-children", os.environ.get("CHILDREN", "2"), *os.environ.get("ONLY", "").split())


def rerun_survivors(module: str) -> None:
    """After tests were added: the last run's survivors of `module` again, against the tests as they are now
    (mutmut keeps its record of which test calls what and measures only the new tests)."""
    work = workdir(module)
    survivors = tally(module, equivalents())["survived"]
    shutil.rmtree(work / "tests")
    shutil.copytree(ROOT / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    meta_path = work / "mutants" / f"{module}.meta"
    before = json.loads(meta_path.read_text())["exit_code_by_key"]
    os.chdir(work)
    if survivors:
        mutmut(module, "run", "--max-children", os.environ.get("CHILDREN", "2"), *survivors)
    # mutmut may drop the other mutants' verdicts when the tests changed: the killed stay killed
    meta = json.loads(meta_path.read_text())
    for name, code in before.items():
        if name not in survivors and meta["exit_code_by_key"].get(name) is None:
            meta["exit_code_by_key"][name] = code
    meta_path.write_text(json.dumps(meta))


def equivalents() -> set[str]:
    """Mutant names listed in equivalent.md (each line `- `name`: reason`)."""
    if not EQUIVALENT.exists():
        return set()
    return set(re.findall(r"^- `([^`]+)`", EQUIVALENT.read_text(), re.M))


def tally(module: str, excluded: set[str]) -> dict:
    from mutmut.stats import status_by_exit_code

    meta = json.loads((workdir(module) / "mutants" / f"{module}.meta").read_text())
    status = {name: status_by_exit_code[code] for name, code in meta["exit_code_by_key"].items()}
    out = {n for n in status if n in excluded and status[n] not in KILLED}
    killed = sum(1 for s in status.values() if s in KILLED)
    counted = len(status) - len(out)
    return {"module": module, "mutants": len(status), "killed": killed, "excluded": len(out),
            "survived": sorted(n for n, s in status.items() if s not in KILLED and n not in out),
            "statuses": status, "score": 100.0 * killed / counted if counted else 100.0}


def record(rows: list[dict]) -> None:
    """One line a module in scores.md, replaced when the module is run again (its first run's score kept)."""
    today = datetime.date.today().isoformat()
    head = ("| module | first run | first score | last run | mutants | killed | survived | excluded | score |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
    lines: dict[str, list[str]] = {}
    if SCORES.exists():
        for line in SCORES.read_text().splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 9 and cells[0].endswith(".py"):
                lines[cells[0]] = cells
    for r in rows:
        first = lines.get(r["module"], [r["module"], today, f"{r['score']:.1f}%"])
        lines[r["module"]] = [r["module"], first[1], first[2], today, str(r["mutants"]), str(r["killed"]),
                              str(len(r["survived"])), str(r["excluded"]), f"{r['score']:.1f}%"]
    intro = ("# Mutation scores\n\nWritten by `make mutate` (mutation/mutate.py), one line a module: its first run "
             "and its latest. score = killed / (mutants - excluded); the excluded mutants (equivalent, or in code "
             "that runs only at import) are listed with their reasons in [equivalent.md](equivalent.md). A module "
             f"keeps a score of at least {TARGET:.0f}%.\n\n")
    SCORES.write_text(intro + head + "\n".join("| " + " | ".join(lines[k]) + " |" for k in sorted(lines)) + "\n")


def report(modules: list[str]) -> int:
    rows = [tally(m, equivalents()) for m in modules]
    record(rows)
    for r in rows:
        print(f"{r['module']}: {r['killed']} of {r['mutants'] - r['excluded']} mutants killed ({r['score']:.1f}%), "
              f"{r['excluded']} excluded (equivalent.md)")
        for name in r["survived"]:
            print(f"  {r['statuses'][name]}: {name}")
    if any(r["survived"] for r in rows):
        print("what each one changed: python mutation/mutate.py --show MODULE|MUTANT")
    return 1 if any(r["score"] < TARGET for r in rows) else 0


def show(args: list[str]) -> None:
    for arg in args:
        module = arg if arg.endswith(".py") else next(
            m for m in (p.relative_to(ROOT).as_posix() for d in PACKAGES for p in (ROOT / d).glob("*.py"))
            if arg.startswith(m[:-3].replace("/", ".") + ".x"))
        names = tally(module, equivalents())["survived"] if arg.endswith(".py") else [arg]
        os.chdir(workdir(module))
        for name in names:
            mutmut(None, "show", name)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--show"]:
        show(argv[1:])
        return 0
    if argv[:1] == ["--one"]:  # a single module's run, in a process of its own (mutmut's state is global)
        run_one(argv[1])
        return 0
    if argv[:1] == ["--survivors-one"]:
        rerun_survivors(argv[1])
        return 0
    survivors = argv[:1] == ["--survivors"]  # only the last run's survivors, against today's tests
    again = argv[:1] == ["--record"]
    modules = [str(Path(a)) for a in (argv[1:] if again or survivors else argv)] or changed_modules()
    bad = [m for m in modules if not mutable(m) or not (ROOT / m).exists()]
    if bad:
        print(f"not a module mutmut can mutate here: {', '.join(bad)} (Python files under {', '.join(PACKAGES)})",
              file=sys.stderr)
        return 2
    if not modules:
        print("no module of gpu_slicing, components, tools or policy changed against main: name one, "
              "e.g. make mutate MODULE=gpu_slicing/karpenter.py")
        return 0
    for m in modules if not again else []:
        subprocess.run([sys.executable, __file__, "--survivors-one" if survivors else "--one", m], cwd=ROOT, check=True)
    return report(modules)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

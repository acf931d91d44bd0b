"""`make test`'s runner: pytest on every core, in workers forked from a process that has already imported the
Pulumi SDK, the project and its libraries and run the dev stack (`python tests/parallel.py <pytest options>`).

Why not plain pytest or pytest-xdist (the quick tier, 2,734 tests, on an idle 2-core machine, December 2026):
plain pytest takes 15.9 s (15 s of CPU in one process); `pytest -n 2` 14.2 s (25 s of CPU: each of its workers
is a new interpreter that imports pytest, hypothesis, the SDK and every test module and runs the dev stack
again); these forked workers 9.6 s (17 s of CPU), and `make test` with its gates beside them 8.4 to 11 s.
The files that never load the SDK (`WITHOUT_SDK`) start in a worker of their own beside the warm-up; the others
are dealt to one worker per core by their measured cost (`SECONDS`; a file not listed counts as one second).
Each worker's output is printed whole when it ends, then one line for the run; the exit status is the worst
worker's. Without `os.fork` (Windows) it is plain pytest. `make test-all` and CI run the whole suite under
pytest-xdist instead.
"""
from __future__ import annotations

import gc
import importlib
import os
import pkgutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
WITHOUT_SDK = ["test_advisor.py", "test_schema.py", "test_placement.py", "test_catalog.py", "test_workflows.py",
               "test_capacity.py", "test_layouts.py", "test_sharing.py", "test_parallel.py", "test_calendar.py",
               "test_fleet_advisor.py", "test_pods.py", "test_dra.py", "test_install.py", "test_refdata.py",
               "test_imports.py", "test_policy_network.py", "test_policy_mig_parted.py", "test_catalog_figures.py",
               "test_policy_reading.py", "test_policy_security.py", "test_karpenter_limits.py",
               "test_catalog_rules.py", "test_policy_gpu.py", "test_policy_limits.py", "test_karpenter_objects.py",
               "test_stack_file_reading.py", "test_load_pipeline.py", "test_network.py", "test_gpu_operator.py",
               "test_pools.py", "test_change_rules.py", "test_diff_report.py", "test_workload_objects.py",
               "test_cross_key_rules.py", "test_diff_impact.py", "test_diff_render.py", "test_mutation_reach.py",
               "test_policy_mig.py", "test_checks_findings.py", "test_checks_kubernetes.py",
               "test_config_validators.py", "test_fleet_search.py", "test_advisor_search.py"]
# CPU seconds of each file's quick tests once the SDK is warm, between a clone with ../shared (CI: the
# reference files' tests run) and one without (they skip), so the shares balance in both.
SECONDS = {"test_config.py": 2.6, "test_stack_files.py": 1.6, "test_observability.py": 1.2, "test_cel_rules.py": 1.1,
           "test_checks.py": 1.1, "test_guards.py": 0.8, "test_policy.py": 0.6, "test_karpenter.py": 0.5,
           "test_fleet.py": 0.4, "test_diff.py": 0.3, "test_components.py": 0.2, "test_cluster_security.py": 0.1,
           "test_deployable.py": 0.1, "test_destroy_order.py": 0.1, "test_engine_config.py": 0.1,
           "test_harness.py": 0.1, "test_karpenter_aws.py": 0.1, "test_node_groups.py": 0.1,
           "test_node_pool_plan.py": 0.1, "test_plan.py": 0.1, "test_policy_pack.py": 0.1, "test_program.py": 0.1,
           "test_releases.py": 0.1, "test_vpc.py": 0.1, "test_workload_edges.py": 0.1,
           "test_component_outputs.py": 0.0, "test_dra_program.py": 0.0, "test_operator_configmaps.py": 0.0}
COUNTED = ("passed", "failed", "error", "skipped", "xfailed", "xpassed", "deselected")


class _Tally:
    """Writes the worker's outcome counts where the parent reads them."""

    def __init__(self, path: str) -> None:
        self.path = path

    def pytest_terminal_summary(self, terminalreporter) -> None:
        counts = {k: len(terminalreporter.stats.get(k, [])) for k in COUNTED}
        Path(self.path).write_text(" ".join(f"{k}={v}" for k, v in counts.items()))


def deal(files: list[str], workers: int) -> list[list[str]]:
    """Files to `workers` shares, costliest first to the least loaded (a slow file dealt last idles a core)."""
    shares: list[list[str]] = [[] for _ in range(workers)]
    load = [0.0] * workers
    for f in sorted(files, key=lambda f: -SECONDS.get(f, 1.0)):
        i = load.index(min(load))
        shares[i].append(f)
        load[i] += SECONDS.get(f, 1.0)
    return [s for s in shares if s]


def _fork(files: list[Path], options: list[str], scratch: Path, name: str) -> tuple[int, Path, Path]:
    out, tally = scratch / f"{name}.out", scratch / f"{name}.tally"
    pid = os.fork()
    if pid:
        return pid, out, tally
    import asyncio

    import pytest

    asyncio.set_event_loop(asyncio.new_event_loop())  # never share an event loop across a fork
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    try:
        code = int(pytest.main([*options, *map(str, files)], plugins=[_Tally(str(tally))]))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


DEV_RUNS: dict = {}  # conftest's `dev_runs` takes these when this runner forked the worker


def _import_all(package: str) -> None:
    """Import every module of one of the project's packages (and what they import: numpy, jsonschema, the CEL
    evaluator...) once here, not once per worker: each worker otherwise imported the same ~400 modules."""
    for module in pkgutil.iter_modules([str(ROOT / package)]):
        if module.name != "__main__":
            importlib.import_module(f"{package}.{module.name}")


def _preload() -> None:
    """What every worker imports: pytest, the conftest's hypothesis, the pure layer. Not pytest's plugins: it
    rewrites their asserts as it imports them."""
    sys.path.insert(0, str(ROOT))
    import hypothesis  # noqa: F401
    import pytest  # noqa: F401

    _import_all("gpu_slicing")


def _warm() -> None:
    """Import the SDK and the tools and run the dev stack as a preview and as an update: what each worker would
    otherwise do on its own."""
    import yaml

    from tools.harness import run_program

    config = dict(yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"])
    DEV_RUNS.update(preview=run_program(config, preview=True), up=run_program(config, preview=False))
    _import_all("tools")
    gc.collect()
    gc.freeze()  # what is alive now is shared, untouched, by every worker (copy-on-write pages)


def main(options: list[str], tests: Path = TESTS) -> int:
    if not hasattr(os, "fork"):
        import pytest

        return int(pytest.main(options))
    start = time.perf_counter()
    files = sorted(p.name for p in tests.glob("test_*.py"))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    plain = [tests / f for f in files if f in WITHOUT_SDK]
    shares = deal([f for f in files if f not in WITHOUT_SDK], cores)
    with tempfile.TemporaryDirectory(prefix="gpu-slicing-tests-") as tmp:
        scratch = Path(tmp)
        _preload()
        workers = [_fork(plain, options, scratch, "without-sdk")] if plain else []
        if shares:
            _warm()
        for i, share in enumerate(shares):
            workers.append(_fork([tests / f for f in share], options, scratch, f"sdk-{i}"))
        worst, totals = 0, dict.fromkeys(COUNTED, 0)
        pending = {pid: (out, tally) for pid, out, tally in workers}
        while pending:
            pid, status = os.wait()
            if pid not in pending:
                continue
            out, tally = pending.pop(pid)
            sys.stdout.write(out.read_text() if out.exists() else "")
            code = os.waitstatus_to_exitcode(status)
            if code == 5:  # pytest: no tests collected in this share (e.g. all deselected): not a failure
                code = 0
            worst = max(worst, code if code >= 0 else 1)
            if tally.exists():
                for part in tally.read_text().split():
                    k, v = part.split("=")
                    totals[k] += int(v)
            else:
                worst = max(worst, 1)
                sys.stdout.write(f"a test worker ended with status {code} before its summary\n")
    summary = ", ".join(f"{v} {k}" for k, v in totals.items() if v)
    print(f"== all workers: {summary} in {time.perf_counter() - start:.1f}s ({len(workers)} workers) ==")
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

# The two commands a newcomer needs: `make plan` (offline plan of the dev stack) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= dev
CONFIG ?=
JSON ?=
DEMAND ?=
BASE ?=
MODULE ?=
# Python keeps compiled modules (and pytest its assert-rewritten tests) in __pycache__, even where the environment
# says not to (PYTHONDONTWRITEBYTECODE, set on some CI and sandbox images): without them every run compiles the SDK's
# modules and rewrites ~70 test files again, 8 of the quick tests' 35 CPU seconds and 2 s of each plan.
export PYTHONDONTWRITEBYTECODE :=

.PHONY: lock refdata plan test test-all test-layers test-types test-lint test-quick test-suite diff advise schema bench mutate clean

# The development set (requirements-dev.lock: the program's run-time set, the checks, tests and linters), resolved
# once by `make lock` and installed as locked: pip brings uv (the version the lock names), uv syncs the venv to the
# lock (~30 s on a cold cache where pip takes ~95 s).
$(VENV)/.installed: requirements.txt requirements-dev.txt requirements.lock requirements-dev.lock
	test -x $(VENV)/bin/uv || { $(PYTHON) -m venv $(VENV) && $(PY) -m pip install --quiet --disable-pip-version-check \
	  "$$(grep -o '^uv==[^ ]*' requirements-dev.lock)"; }
	$(VENV)/bin/uv pip sync --quiet --python $(PY) requirements-dev.lock
	rm -rf $(VENV)/mypy-cache
	touch $@

# Both locks re-resolved from the ranges (the newest versions they admit); the run-time lock is the development
# lock's subset, so the two never disagree.
LOCK := $(VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 --annotation-style line --custom-compile-command "make lock"
lock: $(VENV)/.installed ## re-resolve requirements.lock and requirements-dev.lock after a change of requirements*.txt
	: > requirements.lock && : > requirements-dev.lock
	$(LOCK) requirements-dev.txt -o requirements-dev.lock
	$(LOCK) requirements.txt -c requirements-dev.lock -o requirements.lock

plan: $(VENV)/.installed ## offline plan: STACK=dev | CONFIG=Pulumi.x.yaml, JSON=plan.json
	$(PY) -m tools.plan $(if $(CONFIG),--config $(CONFIG),--stack $(STACK)) $(if $(JSON),--json $(JSON))

diff: $(VENV)/.installed ## what a change does to the running fleet: BASE=Pulumi.x.yaml|git:<ref>, STACK=dev | CONFIG=Pulumi.y.yaml, JSON=diff.json
	@test -n "$(BASE)" || { echo "usage: make diff BASE=<stack file>|git:<ref> [STACK=dev | CONFIG=<stack file>] [JSON=out.json]" >&2; exit 2; }
	$(PY) -m tools.diff --base $(BASE) $(if $(CONFIG),--config $(CONFIG),--stack $(STACK)) $(if $(JSON),--json $(JSON))

test: $(VENV)/.installed ## layer contracts (.importlinter), types (mypy.ini), lint (ruff.toml) and the quick tests (all but `slow`), no network
	@$(MAKE) --no-print-directory -j3 $(OUTPUT_SYNC) test-layers test-types test-lint test-quick

test-all: $(VENV)/.installed ## the same gates and every test, the slow ones too (what CI runs)
	@$(MAKE) --no-print-directory -j3 $(OUTPUT_SYNC) test-layers test-types test-lint test-suite

# The gates and the tests run at once, each one's output printed whole when it ends (GNU make 4+; macOS's make 3.81 has no
# --output-sync, so there their lines interleave); any failure fails the target.
OUTPUT_SYNC := $(if $(filter 3.%,$(MAKE_VERSION)),,--output-sync=target)
test-layers:
	$(VENV)/bin/lint-imports --no-cache > /dev/null || $(VENV)/bin/lint-imports --no-cache
# mypy's cache is mostly the types of the standard library, pydantic and the Pulumi SDK: 11 s of CPU to build, 0.3 s
# to reuse. A new clone or worktree on an existing venv starts from the copy the venv keeps (taken after its first
# type check, dropped when the venv is re-synced) and rechecks only the modules that differ (~3 s at most).
test-types:
	@test -e .mypy_cache || ! test -e $(VENV)/mypy-cache || cp -R $(VENV)/mypy-cache .mypy_cache
	$(PY) -m mypy --no-error-summary
	@test -e $(VENV)/mypy-cache || { cp -R .mypy_cache $(VENV)/mypy-cache.$$$$ && \
	  mv $(VENV)/mypy-cache.$$$$ $(VENV)/mypy-cache; } 2>/dev/null || rm -rf $(VENV)/mypy-cache.$$$$
test-lint:
	$(VENV)/bin/ruff check --quiet .
# Quick: workers forked once the SDK is imported and the dev stack has run (tests/parallel.py says why).
test-quick:
	$(PY) tests/parallel.py -q -m "not slow"
# Everything on every core (pytest-xdist), a test file per worker: module fixtures and the per-file state of
# test_stack_files stay in one process.
test-suite:
	$(PY) -m pytest -q -n auto --dist loadfile

refdata: $(VENV)/.installed ## regenerate tools/data/ (CRD schemas and CEL rules, chart values, MIG tables) from ../shared/reference
	$(PY) -m tools.refdata

advise: $(VENV)/.installed ## MIG layout advisor: DEMAND=demand.yaml | CONFIG=Pulumi.x.yaml, JSON=out.json, ARGS="--karpenter --max-layouts 2 --price 22"
	$(PY) -m tools.advise $(if $(DEMAND),--demand $(DEMAND)) $(if $(CONFIG),--config $(CONFIG)) $(if $(JSON),--json $(JSON)) $(ARGS)

schema: $(VENV)/.installed ## regenerate stack.schema.json (editors' completion and checks) from gpu_slicing/config.py
	$(PY) -m tools.schema

bench: $(VENV)/.installed ## capacity planner and advisor benchmarks; the plan against importing the SDK it uses
	$(PY) bench/bench_capacity.py
	$(PY) bench/bench_advisor.py
	$(PY) bench/bench_plan.py

mutate: $(VENV)/.installed ## mutation testing (mutmut): MODULE=gpu_slicing/karpenter.py, else the modules changed against main; SLOW=1 adds the slow tests
	nice -n 15 $(PY) mutation/mutate.py $(MODULE)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mutation

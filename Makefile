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

.PHONY: plan test test-all test-layers test-types test-quick test-suite diff advise schema bench mutate clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

plan: $(VENV)/.installed ## offline plan: STACK=dev | CONFIG=Pulumi.x.yaml, JSON=plan.json
	$(PY) -m tools.plan $(if $(CONFIG),--config $(CONFIG),--stack $(STACK)) $(if $(JSON),--json $(JSON))

diff: $(VENV)/.installed ## what a change does to the running fleet: BASE=Pulumi.x.yaml|git:<ref>, STACK=dev | CONFIG=Pulumi.y.yaml, JSON=diff.json
	@test -n "$(BASE)" || { echo "usage: make diff BASE=<stack file>|git:<ref> [STACK=dev | CONFIG=<stack file>] [JSON=out.json]" >&2; exit 2; }
	$(PY) -m tools.diff --base $(BASE) $(if $(CONFIG),--config $(CONFIG),--stack $(STACK)) $(if $(JSON),--json $(JSON))

test: $(VENV)/.installed ## layer contracts (.importlinter), the pure layer's types (mypy.ini) and the quick tests (all but `slow`), no network
	@$(MAKE) --no-print-directory -j3 $(OUTPUT_SYNC) test-layers test-types test-quick

test-all: $(VENV)/.installed ## the same gates and every test, the slow ones too (what CI runs)
	@$(MAKE) --no-print-directory -j3 $(OUTPUT_SYNC) test-layers test-types test-suite

# The three run at once, each one's output printed whole when it ends (GNU make 4+; macOS's make 3.81 has no
# --output-sync, so there their lines interleave); any failure fails the target.
OUTPUT_SYNC := $(if $(filter 3.%,$(MAKE_VERSION)),,--output-sync=target)
test-layers:
	$(VENV)/bin/lint-imports --no-cache > /dev/null || $(VENV)/bin/lint-imports --no-cache
test-types:
	$(PY) -m mypy --no-error-summary
# Quick: workers forked once the SDK is imported and the dev stack has run (tests/parallel.py says why).
test-quick:
	$(PY) tests/parallel.py -q -m "not slow"
# Everything on every core (pytest-xdist), a test file per worker: module fixtures and the per-file state of
# test_stack_files stay in one process.
test-suite:
	$(PY) -m pytest -q -n auto --dist loadfile

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

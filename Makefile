# The two commands of the README: `make eval` and `make test`.
# Both create .venv on first use with every pinned dependency; nothing else
# needs installing by hand (Debian, Python 3.11, no ROS install needed).

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
PACKAGES := src/pe_sim src/pe_safety_filter src/pe_policy src/pe_training src/pe_bringup
STAMP  := $(VENV)/.installed
# Eval defaults (override: make eval EPISODES=100 SCENARIO=seed_1v1_2obs)
EPISODES ?= 200
SCENARIO ?= bench_1v1_flee
EVAL_ARGS ?=
export PYTHONHASHSEED := 0

.PHONY: setup eval test lint bench lock clean

setup: $(STAMP)

$(STAMP): requirements/base.txt requirements/constraints.txt $(wildcard src/*/setup.py)
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Debian: apt-get install python3.11 python3.11-venv)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements/base.txt -c requirements/constraints.txt
	$(PIP) install --quiet --disable-pip-version-check --no-deps --no-build-isolation $(addprefix -e ,$(PACKAGES))
	touch $(STAMP)

eval: setup
	$(VENV)/bin/pe-eval --scenario $(SCENARIO) --episodes $(EPISODES) $(EVAL_ARGS)

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff check .

bench: setup
	$(VENV)/bin/pe-sim-bench

lock:
	rm -rf /tmp/pe-lock && $(PYTHON) -m venv /tmp/pe-lock
	/tmp/pe-lock/bin/pip install -r requirements/base.txt
	/tmp/pe-lock/bin/pip freeze --exclude-editable | grep -v '^pe[-_]' > requirements/constraints.txt

clean:
	rm -rf $(VENV) build install log .pytest_cache .ruff_cache

# The two commands of the README: `make eval` and `make test`.
# Both create .venv on first use with every pinned dependency; nothing else
# needs installing by hand (Debian, Python 3.11, no ROS install needed).

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
PACKAGES := src/pe_sim src/pe_safety_filter src/pe_policy src/pe_training src/pe_ros src/pe_bringup
STAMP  := $(VENV)/.installed
# Eval defaults (override: make eval EPISODES=1000 SCENARIO=seed_1v1_2obs PURSUER=...)
EPISODES ?= 200
SCENARIO ?= bench_1v1_flee
PURSUER  ?= models/selfplay_envelope_full_pursuer.onnx
EVADER   ?= scripted:flee
FILTER   ?= all
EVAL_ARGS ?=
export PYTHONHASHSEED := 0
SHELL := /bin/bash

.PHONY: setup eval eval-headless test lint bench lock clean ray

setup: $(STAMP)

$(STAMP): requirements/base.txt requirements/constraints.txt $(wildcard src/*/setup.py)
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Debian: apt-get install python3.11 python3.11-venv)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements/base.txt -c requirements/constraints.txt \
		2>&1 | grep -v "is ignored: it is neither a file nor a directory" ; test $${PIPESTATUS[0]} -eq 0
	$(PIP) install --quiet --disable-pip-version-check --no-deps --no-build-isolation $(addprefix -e ,$(PACKAGES))
	touch $(STAMP)

# The main job: the ROS 2 evaluation graph (sim, policy and safety-filter nodes as
# separate processes over DDS, lockstep), with the shipped default pursuer.
eval: setup
	$(VENV)/bin/pe-launch eval --scenario $(SCENARIO) --pursuer $(PURSUER) --evader $(EVADER) \
		--episodes $(EPISODES) --filter $(FILTER) --mode lockstep --quiet \
		--out results/ros-eval-$(SCENARIO) $(EVAL_ARGS)

# The same episodes without ROS, in the batch simulator (identical records).
eval-headless: setup
	$(VENV)/bin/pe-eval --scenario $(SCENARIO) --pursuer $(PURSUER) --evader $(EVADER) \
		--episodes $(EPISODES) --filter $(FILTER) --out results/eval-$(SCENARIO) $(EVAL_ARGS)

# The optional Ray extra (pe-train --seeds, pe-selfplay, pe-exploit, pe-report with --ray; docs/ray.md).
RAY_STAMP := $(VENV)/.ray-installed
ray: $(RAY_STAMP)

$(RAY_STAMP): $(STAMP) requirements/ray.txt
	$(PIP) install --quiet --disable-pip-version-check -r requirements/ray.txt -c requirements/constraints.txt \
		2>&1 | grep -v "is ignored: it is neither a file nor a directory" ; test $${PIPESTATUS[0]} -eq 0
	touch $(RAY_STAMP)

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff check .

# Every package's benchmark (medians and p99; nothing asserts on time).
bench: setup
	$(VENV)/bin/pe-sim-bench
	$(VENV)/bin/pe-filter-bench
	$(VENV)/bin/pe-policy-bench
	$(VENV)/bin/pe-barriernet-bench
	$(VENV)/bin/pe-train-bench pursuer_bench_flee
	$(VENV)/bin/python scripts/activation_bench.py
	$(VENV)/bin/pe-ros-bench --duration 60

lock:
	rm -rf /tmp/pe-lock && $(PYTHON) -m venv /tmp/pe-lock
	/tmp/pe-lock/bin/pip install -r requirements/base.txt
	/tmp/pe-lock/bin/pip freeze --exclude-editable | grep -v '^pe[-_]' > requirements/constraints.txt

clean:
	rm -rf $(VENV) build install log .pytest_cache .ruff_cache

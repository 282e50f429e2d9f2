# leadstage — every target works on a fresh clone (Python 3.11+, Java 17+, Maven).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: .venv tools rules test lint unit integration demo bench bench-1m soak profile instructions codecs faults fuzz clean

# Re-installs only when pyproject.toml or setup.py changed since the last install; then builds
# the hot modules with Cython in place (streams/__init__.py), again whenever one of them changed
# (about 30 s from scratch on 2 cores; LEADSTAGE_COMPILED=0 builds none).
.venv: $(STAMP)
	$(BIN)/python setup.py -q build_ext --inplace
$(STAMP): pyproject.toml setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip 'setuptools>=77' wheel 'cython>=3.0,<4'
	LEADSTAGE_COMPILED=0 $(BIN)/python -m pip install -q --no-build-isolation -e '.[test]'
	@touch $(STAMP)

# Only folders that exist: git does not keep an empty bench/.
# lint-imports keeps the layers of streams/ (contracts in pyproject.toml); mypy is strict on
# the core and wire layers, and checks the benchmarks too: their scripts import each other as
# top-level modules of bench/, as they run.
lint: .venv
	$(BIN)/ruff check $(wildcard streams tests bench deploy/grafana setup.py)
	$(BIN)/lint-imports
	MYPYPATH=bench $(BIN)/mypy --explicit-package-bases streams bench

# Prometheus and promtool (Debian's package) for the rule tests and the real-scrape test;
# Chromium and its driver (Debian's packages) for the collector's browser test.
tools:
	@command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 \
	  && command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
	  echo "installing Debian's prometheus, chromium and chromium-driver packages (needs root)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    prometheus chromium chromium-driver >/dev/null; }

rules: tools
	promtool check rules deploy/prometheus/rules/*.yml
	promtool test rules deploy/prometheus/tests/*.yml

# Integration tests start the local broker through `streams.tools.broker` (or use
# KAFKA_BOOTSTRAP_SERVERS) and stop it again if they started it.
test: .venv lint rules tools
	$(BIN)/python -m pytest

unit: .venv
	$(BIN)/python -m pytest tests/unit

integration: .venv
	$(BIN)/python -m pytest tests/integration

# The whole system on this machine: broker, worker, synthetic producers, live view.
demo: .venv
	$(BIN)/leadstage demo

# Benchmark (not part of make test): writes bench/results.json and prints a table.
# First the peers' equality test (their final stages equal leadstage's on a small history),
# so that no figure is reported for a peer that does a different job.
bench: .venv
	$(BIN)/python -m pytest -m peers -p no:cacheprovider -q tests/integration/test_peers.py
	$(BIN)/python bench/run.py

# The same at 1,000,000 leads and 3,000,000 events: peak RSS and disk per lead at the scale of
# README "Sizing" (writes bench/results-1000000.json; about 20 minutes on 2 cores).
bench-1m: .venv
	BENCH_LEADS=1000000 BENCH_EVENTS=3000000 $(BIN)/python bench/run.py

# 10 minutes at 80% of the measured maximum, latency per minute (bench/soak.py).
soak: .venv
	$(BIN)/python bench/soak.py

# Instructions per event of the in-process pipeline, counted by valgrind's cachegrind (Debian's
# package): the same on every run, for levers smaller than this machine's run-to-run noise.
instructions: .venv
	@command -v valgrind >/dev/null 2>&1 || { \
	  echo "installing Debian's valgrind package (needs root)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
	$(BIN)/python bench/pipeline_instructions.py

# The Avro codecs of the shipped schemas, as source compiled with the hot modules
# (streams/wire/avro_codegen.py): after changing a schema or a generator.
codecs: .venv
	$(BIN)/python -m streams.tools.prebuilt_codecs
	$(BIN)/python setup.py -q build_ext --inplace

# Where the worker's time goes, per stage, from py-spy samples (bench/stage_profile.py).
profile: .venv
	$(BIN)/python -m pip install -q 'py-spy>=0.3.14,<0.5'
	$(BIN)/python bench/stage_profile.py

# Fault injection at full size, every scenario, with reconciliation figures printed.
faults: .venv
	LEADSTAGE_FAULTS_SCALE=1 $(BIN)/python -m pytest tests/faults -m "" -s -p no:cacheprovider \
	  tests/integration/test_worker.py::test_definitions_that_fail_the_checker_stop_the_worker

# Coverage-guided fuzzing of the input gate for FUZZ_SECONDS (default 60), memory capped. The
# hot modules run interpreted: atheris measures coverage by instrumenting Python bytecode,
# which compiled modules do not have.
FUZZ_SECONDS ?= 60
fuzz: .venv
	$(BIN)/python -m pip install -q 'atheris>=2.3,<4'
	LEADSTAGE_COMPILED=0 $(BIN)/python tests/fuzz/fuzz_input_gate.py -max_total_time=$(FUZZ_SECONDS) \
	  -rss_limit_mb=1024 -max_len=4096 .cache/fuzz-corpus

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build
	find streams -name "*.so" -delete

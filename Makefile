# The targets here are exactly what the README and CI run.
#   make run    set everything up and run the sample job end to end, event-driven on the
#               embedded SQLite store (offline model, no keys)
#   make test   set everything up (with Chromium for the browser tests) and run lint, type
#               checks and the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup browser run test lint typecheck pytest coverage scale-test proto lock bazel clean

$(STAMP): requirements_pip.txt requirements_lock.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements_pip.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements_lock.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

# Debian's Chromium, which the browser tests (tests/web/browser) drive through Playwright; installed
# once (with sudo when not root), nothing when it is there.
browser:
	@test -x /usr/bin/chromium || { \
		sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
		export DEBIAN_FRONTEND=noninteractive; \
		$$sudo apt-get update -qq && $$sudo apt-get install -y -qq chromium >/dev/null; }

# Event-driven, as in the cloud: commit the job run to the embedded store, let the dispatcher run
# its task runs (each commit triggers the next), then read the run back.
run: setup
	@RUN_ID=$$($(BIN)/job_submitter --input_path=examples/sample_job_config.json --offline) && \
	$(BIN)/dispatcher --until_idle --offline && \
	$(BIN)/config_reader --run_id=$$RUN_ID

test: setup lint typecheck pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

# Files in collection order (--no-loadscope-reorder): xdist's default sends files with the most
# tests first, which left the single-test benchmark smoke runs (a minute or more) for the end,
# one worker busy with them while the other idled; in path order they start first and the web
# suite's many short files end the run.
pytest: setup browser
	$(BIN)/pytest -n auto --dist loadfile --no-loadscope-reorder

# The whole suite with line coverage, the tools run as subprocesses included (slower: coverage
# traces every line, and each tool's process starts under it).
coverage: setup browser
	$(BIN)/pytest -n auto --dist loadfile --no-loadscope-reorder --cov --cov-report=term:skip-covered

# Full-scale workloads (tests marked `scale`, skipped by `make test`): e.g. a map of 1,000
# items on the Firestore emulator through functions-framework (minutes: the emulator is slow).
scale-test: setup
	LLM_SCHEDULER_SCALE_TESTS=1 $(BIN)/pytest -p no:cacheprovider -m scale

# Benchmarks (bench/, docs/benchmarks.md): a fake OpenAI server, the workloads through
# llm-scheduler and through a plain asyncio + openai baseline, medians of 5 repetitions; then
# the web UI against its targets (server times, and Chromium).
bench: setup browser
	$(BIN)/python -m bench.run --write-docs
	$(BIN)/python -m bench.web_ui --write-docs

# Regenerate the protobuf code (a test fails when the checked-in code is stale).
proto: setup
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. \
		proto/llm_scheduler/v1/config.proto proto/llm_scheduler/v1/run.proto

# Regenerate the hash-pinned lock from requirements.in, and the cloud functions' pins from it.
lock: setup
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links \
		--output-file=requirements_lock.txt requirements.in
	$(BIN)/python scripts/function_requirements.py

# The Bazel path (Debian's bazel-bootstrap, offline; Python from .venv): build everything and run
# the Bazel tests, then check the five `bazel run` commands print what the console scripts print.
bazel: setup
	bazel test //...
	scripts/bazel_check.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage

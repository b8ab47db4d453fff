#!/usr/bin/env bash
# Checks that the five `bazel run` commands of the README print what the console scripts in
# .venv/bin print on the same inputs, offline. Needs `make setup` and `bazel` on PATH.
#
# Results (stdout) are compared as JSON with sorted keys, since a job's outputs may come in either
# order from one run to the next; progress, run ids and timings go to stderr and are not compared.
# create_sample is compared by the files it writes and the paths it prints.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
passed=0
failed=0

# Prints the JSON on stdin with sorted keys (or the text unchanged when it is not JSON).
canonical() {
  "${BIN}/python" -c '
import json, sys
text = sys.stdin.read()
try:
    print(json.dumps(json.loads(text), indent=2, sort_keys=True))
except ValueError:
    sys.stdout.write(text)
'
}

# check NAME TARGET ARGS...: one bazel run against the console script NAME.
check() {
  local name="$1" target="$2"
  shift 2
  local out="${work}/${name}"
  mkdir -p "${out}"
  local start end
  start="$(date +%s%N)"
  if ! bazel run --noshow_progress "${target}" -- "$@" >"${out}/bazel.out" 2>"${out}/bazel.err"; then
    echo "FAIL ${name}: bazel run ${target} exited non-zero:" >&2
    tail -n 20 "${out}/bazel.err" >&2
    failed=$((failed + 1))
    return
  fi
  end="$(date +%s%N)"
  "${BIN}/${name}" "$@" >"${out}/console.out" 2>"${out}/console.err" || {
    echo "FAIL ${name}: ${BIN}/${name} exited non-zero:" >&2
    tail -n 20 "${out}/console.err" >&2
    failed=$((failed + 1))
    return
  }
  if diff -u <(canonical <"${out}/console.out") <(canonical <"${out}/bazel.out") >"${out}/diff"; then
    printf 'ok   %-14s bazel run %s (%d ms)\n' "${name}" "${target}" $(((end - start) / 1000000))
    passed=$((passed + 1))
  else
    echo "FAIL ${name}: bazel run ${target} printed something else than ${BIN}/${name}:" >&2
    cat "${out}/diff" >&2
    failed=$((failed + 1))
  fi
}

# create_sample: the same files, and the same paths once each run's folder is named alike.
samples="${work}/samples"
if bazel run --noshow_progress //llm_scheduler/config_tools:create_sample -- \
  --output_dir="${samples}" >"${work}/create_sample.bazel" 2>"${work}/create_sample.err" &&
  "${BIN}/create_sample" --output_dir="${work}/samples_console" >"${work}/create_sample.console" \
    2>>"${work}/create_sample.err" &&
  diff -r "${work}/samples_console" "${samples}" &&
  diff <(sed "s#${work}/samples_console#DIR#" "${work}/create_sample.console") \
    <(sed "s#${samples}#DIR#" "${work}/create_sample.bazel"); then
  echo "ok   create_sample  bazel run //llm_scheduler/config_tools:create_sample"
  passed=$((passed + 1))
else
  echo "FAIL create_sample: see above" >&2
  tail -n 20 "${work}/create_sample.err" >&2
  failed=$((failed + 1))
fi

check config_reader //llm_scheduler/config_tools:config_reader \
  --input_path="${samples}/sample_fanout_job_config.json" --config_type=job
check step_runner //llm_scheduler/runner:step_runner \
  --input_path="${samples}/sample_step_config.json" --offline
check task_runner //llm_scheduler/runner:task_runner \
  --input_path="${samples}/sample_task_config.json" --offline --var topic=owls
check job_runner //llm_scheduler/runner:job_runner \
  --input_path="${samples}/sample_job_config.json" --offline

echo "bazel_check: ${passed} passed, ${failed} failed"
[[ "${failed}" -eq 0 ]]

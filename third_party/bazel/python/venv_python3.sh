#!/usr/bin/env bash
# The interpreter of the Bazel Python toolchain: the project's virtualenv (`make setup`), so
# py_binary and py_test targets import protobuf, absl, the provider SDKs... from the same
# hash-pinned packages as the console scripts.
set -euo pipefail
# Bazel runs this script through a symlink in a runfiles tree or a sandbox; resolving it leads
# back to the source tree, whose .venv is three folders up. The venv's python3 is itself a
# symlink and must not be resolved: Python finds its venv from the path it is started by.
here="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
python="$(readlink -m "${here}/../../..")/.venv/bin/python3"
if [[ ! -x "${python}" ]]; then
  echo "error: ${python} not found: run 'make setup' first" >&2
  exit 2
fi
# `bazel run` starts a binary inside its runfiles tree and names the caller's folder in
# BUILD_WORKING_DIRECTORY; run from there so relative paths (--input_path=examples/...,
# --output_dir, the default store .llm_scheduler/) mean what they mean to the console scripts.
# Bazel's stub has already made every path it passes (the program, PYTHONPATH) absolute.
if [[ -n "${BUILD_WORKING_DIRECTORY:-}" ]]; then
  cd "${BUILD_WORKING_DIRECTORY}"
fi
exec "${python}" "$@"

"""Runs pytest on the paths a py_test passes as args, from the test's runfiles.

py_test runs its main as a plain script (unittest-style); this lets Bazel run existing pytest
files unchanged, with the settings of pyproject.toml (a data file of the target).
"""

from __future__ import annotations

import sys

import pytest

if __name__ == "__main__":
    # Runfiles are read-only: no .pytest_cache.
    sys.exit(pytest.main(["-p", "no:cacheprovider", *sys.argv[1:]]))

#!/usr/bin/env bash
# Stand-in for Bazel's coverage tools, which are downloaded and so unavailable offline.
echo "error: bazel coverage is not available offline; run 'make pytest' for coverage" >&2
exit 1

"""Bazel's built-in ProtoInfo under another name, so defs.bzl can re-export it as ProtoInfo."""

NativeProtoInfo = ProtoInfo

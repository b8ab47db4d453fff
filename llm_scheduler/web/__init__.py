"""The web UI: a thin ASGI layer (FastAPI, Jinja templates, a little JavaScript) over the library.

Every HTML page has a JSON twin at the same path plus ``.json``; actions are JSON POSTs. The
runners never import this package; it needs the ``web`` extra (``pip install
'llm-scheduler[web]'``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm_scheduler.web.app import WebSettings, WebState, create_app

__all__ = ["WebSettings", "WebState", "create_app"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so the `web_ui` console script (web.cli) starts, and prints its
    # --help, without the extra; serving then names the install command.
    if name in __all__:
        from llm_scheduler.web import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

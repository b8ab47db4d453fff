"""The web UI: a thin ASGI layer (FastAPI, Jinja templates, a little JavaScript) over the library.

Every HTML page has a JSON twin at the same path plus ``.json``; actions are JSON POSTs. The
runners never import this package; it needs the ``web`` extra (``pip install
'llm-scheduler[web]'``).
"""

from __future__ import annotations

from llm_scheduler.web.app import WebSettings, WebState, create_app

__all__ = ["WebSettings", "WebState", "create_app"]

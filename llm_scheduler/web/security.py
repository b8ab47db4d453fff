"""The web UI's request checks and response headers: access token, CSRF, security headers.

An ASGI middleware, so it also covers streamed responses (server-sent events) and static files.

* Token: when the app has one, every request must carry it, as ``Authorization: Bearer T`` or in
  the cookie set by visiting any page once with ``?token=T``; else 401.
* CSRF: a state-changing request (anything but GET, HEAD, OPTIONS) must be JSON
  (``Content-Type: application/json``, which a cross-site form cannot send without a CORS
  preflight, and no CORS header is ever sent), with no ``Origin`` or the server's own, and
  ``Sec-Fetch-Site`` absent or ``same-origin``; else 403.
* Every response carries a strict Content-Security-Policy (no inline scripts or styles),
  ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: same-origin``.
"""

from __future__ import annotations

import hmac
import urllib.parse

from starlette.datastructures import URL, MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "SECURITY_HEADERS",
    "TOKEN_COOKIE",
    "SecurityMiddleware",
]

TOKEN_COOKIE = "llm_scheduler_token"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SecurityMiddleware:
    """Checks the token and CSRF rules, and adds the security headers to every response."""

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        """Wraps ``app``.

        Args:
            app: The ASGI application.
            token: The access token every request must carry; None for none (loopback only).
        """
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handles one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        request = Request(scope)
        rejection = self._authenticate(request) or _check_csrf(request)
        if rejection is not None:
            await rejection(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _authenticate(self, request: Request) -> Response | None:
        """None when the request may go on; else the response that refuses or redirects it."""
        if self.token is None:
            return None
        query_token = request.query_params.get("token")
        if query_token is not None and request.method == "GET":
            if not self._matches(query_token):
                return _error(401, "wrong token")
            # Trade the token in the address for a cookie, and drop it from the address bar.
            query = urllib.parse.urlencode(
                [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            )
            target = URL(path=request.url.path, query=query)
            response = RedirectResponse(str(target), status_code=303)
            response.set_cookie(
                TOKEN_COOKIE, self.token, httponly=True, samesite="strict", path="/"
            )
            return response
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self._matches(credentials.strip()):
            return None
        if self._matches(request.cookies.get(TOKEN_COOKIE, "")):
            return None
        return _error(
            401,
            "this server needs its access token: open the URL it printed (with ?token=...) "
            "or send Authorization: Bearer TOKEN",
        )

    def _matches(self, candidate: str) -> bool:
        assert self.token is not None
        return bool(candidate) and hmac.compare_digest(
            candidate.encode("utf-8"), self.token.encode("utf-8")
        )


def _check_csrf(request: Request) -> Response | None:
    """None for a safe method or a same-origin JSON request; else a 403."""
    if request.method in _SAFE_METHODS:
        return None
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        return _error(403, "state-changing requests must send Content-Type: application/json")
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if origin is not None and origin != own:
        return _error(403, f"cross-origin request refused (Origin {origin!r})")
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site != "same-origin":
        return _error(403, f"cross-site request refused (Sec-Fetch-Site {fetch_site!r})")
    return None


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)

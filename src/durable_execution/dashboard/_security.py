"""What keeps the dashboard safe to leave running: the token, CSRF tokens and response headers.

* With a token (required for any bind other than loopback), every request but the static assets
  and the login form needs it: ``?token=…`` once (the dashboard then sets a cookie and redirects
  to the same page without it, so the token does not stay in the address bar or the history) or
  the login form. The cookie holds an HMAC of the token, never the token; every comparison is
  constant-time.
* Every POST carries a CSRF token derived from a per-process secret (a restarted dashboard
  invalidates old forms) and, when the browser sends one, an ``Origin`` that is this server.
* Every response forbids framing, inline scripts and styles and foreign resources (CSP
  ``default-src 'self'``), and sends no referrer.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Final
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE: Final = "durable_dashboard"
CSRF_FIELD: Final = "csrf_token"
TOKEN_PARAM: Final = "token"
# Paths served without the token: assets hold no data, and the login form must load.
PUBLIC_PREFIXES: Final = ("/static/", "/login")
HEADERS: Final[dict[str, str]] = {
    "Content-Security-Policy": (
        "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

LoginPage = Callable[[Request, str, int], Awaitable[Response]]


def _mac(key: bytes, purpose: str) -> str:
    return hmac.new(key, purpose.encode(), hashlib.sha256).hexdigest()


def same(left: str, right: str) -> bool:
    """Constant-time equality of two strings (any text, not only ASCII)."""
    return hmac.compare_digest(left.encode(), right.encode())


class Guard:
    """The process's secrets and the checks made with them."""

    def __init__(self, token: str | None, secret: bytes | None = None) -> None:
        self.token = token
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self.csrf_token = _mac(self._secret, "csrf")
        self._session = None if token is None else _mac(token.encode(), "dashboard session")

    def token_matches(self, given: str) -> bool:
        return self.token is not None and same(given, self.token)

    def session_cookie(self) -> str:
        assert self._session is not None, "a session cookie exists only with a token"
        return self._session

    def signed_in(self, request: Request) -> bool:
        if self._session is None:
            return True
        return same(request.cookies.get(COOKIE, ""), self._session)

    def csrf_ok(self, submitted: str) -> bool:
        return same(submitted, self.csrf_token)


def set_session(response: Response, guard: Guard) -> None:
    response.set_cookie(COOKIE, guard.session_cookie(), httponly=True, samesite="strict", path="/")


def local_path(target: str) -> str:
    """``target`` if it is a path on this server, else ``/``: a login never redirects away."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def origin_ok(request: Request) -> bool:
    """Refuse a POST that a browser says comes from another site's page.

    ``Sec-Fetch-Site`` when the browser sends it (every current one does); else ``Origin``,
    which is ``null`` under ``Referrer-Policy: no-referrer`` and then proves nothing. The CSRF
    token is checked either way; this is the second lock.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


async def form_fields(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the dashboard's forms are all small and urlencoded)."""
    body = await request.body()
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


class SecurityMiddleware:
    """Adds the security headers to every response and enforces the token."""

    def __init__(self, app: ASGIApp, guard: Guard, login_page: LoginPage) -> None:
        self.app = app
        self.guard = guard
        self.login_page = login_page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        response = await self._refusal(Request(scope, receive))
        if response is not None:
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    async def _refusal(self, request: Request) -> Response | None:
        """The response that replaces the page when the token is missing or wrong, else None."""
        guard = self.guard
        if guard.token is None or request.url.path.startswith(PUBLIC_PREFIXES):
            return None
        given = request.query_params.get(TOKEN_PARAM)
        if given is not None:
            if not guard.token_matches(given):
                return await self.login_page(request, "That token is not right.", 401)
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != TOKEN_PARAM]
            target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
            response: Response = RedirectResponse(target, status_code=303)
            set_session(response, guard)
            return response
        if guard.signed_in(request):
            return None
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            return await self.login_page(request, "", 401)
        return Response("a token is required: sign in at /login\n", status_code=401)

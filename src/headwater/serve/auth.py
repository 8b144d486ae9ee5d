"""Access control of `headwater serve`, and the one shape of every API error.

On 127.0.0.1 the server is open. Bound to any other address, `headwater serve` needs an
access token (`HEADWATER_SERVE_TOKEN`), and then every route but `/health`, `/login` and
`/static/*` needs either

- `Authorization: Bearer <token>`, or
- the `headwater_session` cookie set by `POST /login` (form field `token`). The cookie
  holds an expiry time and an HMAC-SHA256 of it keyed by the token, never the token;
  it is HttpOnly and SameSite=Strict, and Secure when the request came over HTTPS.

Without either, API paths (`/api/*`, `/metrics`, `/openapi.json`) answer 401 with the JSON
error shape below, and pages redirect to `/login?next=<the page>`.

Every API error, whatever its cause (401, 404, 422, 500), is
`{"error": {"status": <code>, "message": <text>}}`; pages get a small HTML error page.
A 500 never shows the exception's text (it may hold a secret); it is logged instead.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from headwater.serve.web import NAV, project_of, templates

log = logging.getLogger("headwater.serve")

COOKIE = "headwater_session"
SESSION_SECONDS = 7 * 24 * 3600
OPEN_PATHS = ("/health", "/login")
OPEN_PREFIXES = ("/static/",)
API_PATHS = ("/metrics", "/openapi.json", "/health")
API_PREFIXES = ("/api/",)
MAX_FORM_BYTES = 16 * 1024

Handler = Callable[[Request], Awaitable[Response]]


def is_api(path: str) -> bool:
    """Whether `path` answers JSON (and JSON errors) rather than HTML."""
    return path in API_PATHS or path.startswith(API_PREFIXES)


def error_json(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"status": status, "message": message}}, status_code=status, headers=headers
    )


ERROR_PAGE = """{% extends "base.html" %}
{% block title %}{{ status }}{% endblock %}
{% block main %}<h1>{{ status }}</h1><p class="error">{{ message }}</p>
<p><a href="/">Home</a></p>{% endblock %}"""


def error_page(request: Request, status: int, message: str) -> Response:
    try:
        body = templates.env.from_string(ERROR_PAGE).render(
            request=request,
            project=project_of(request),
            nav=NAV,
            status=status,
            message=message,
        )
    except Exception:  # the page must not fail while reporting a failure
        body = f"<h1>{status}</h1><p>{html.escape(message)}</p>"
    return HTMLResponse(body, status_code=status)


def error_response(request: Request, status: int, message: str) -> Response:
    if is_api(request.url.path) or not _accepts_html(request):
        return error_json(status, message)
    return error_page(request, status, message)


def _accepts_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept or "hx-request" in request.headers


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body"))
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", ""))
    return "invalid request: " + "; ".join(parts)


def install_errors(app: FastAPI) -> None:
    """JSON errors for the API, HTML error pages for the rest."""

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail: Any = exc.detail
        message = detail if isinstance(detail, str) and detail else str(detail or "error")
        response = error_response(request, exc.status_code, message)
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(request, 422, _validation_message(exc))

    async def internal(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(request, 500, "internal server error (see the server's log)")

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, internal)


# ------------------------------------------------------------------- tokens


def session_value(token: str, expires: int) -> str:
    """The cookie: `<expiry>.<HMAC-SHA256(token, expiry)>`; the token is not in it."""
    mac = hmac.new(token.encode(), f"headwater-session:{expires}".encode(), hashlib.sha256)
    return f"{expires}.{mac.hexdigest()}"


def valid_session(token: str, value: str | None, now: float | None = None) -> bool:
    if not value or "." not in value:
        return False
    expires_text = value.split(".", 1)[0]
    if not expires_text.isdigit():
        return False
    expires = int(expires_text)
    if expires < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(value.encode(), session_value(token, expires).encode())


def valid_bearer(token: str, header: str | None) -> bool:
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return False
    return hmac.compare_digest(value.strip().encode(), token.encode())


def safe_next(value: str | None) -> str:
    """A local path to return to after login (never another site)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(c in value for c in "\r\n\\") or "://" in value.split("?", 1)[0]:
        return "/"
    return value


def _is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def install(app: FastAPI, token: str | None) -> None:
    """The JSON error shape always; with `token`, the login routes and the access check."""
    install_errors(app)
    if token is None:
        return
    if not token.strip():
        raise ValueError("the access token is empty")
    _login_routes(app, token)

    @app.middleware("http")
    async def require_token(request: Request, call_next: Handler) -> Response:
        path = request.url.path
        allowed = (
            _is_open(path)
            or valid_bearer(token, request.headers.get("authorization"))
            or valid_session(token, request.cookies.get(COOKIE))
        )
        if allowed:
            response = await call_next(request)
        elif is_api(path):
            response = error_json(
                401,
                "an access token is required: 'Authorization: Bearer <token>' or log in at /login",
                {"WWW-Authenticate": 'Bearer realm="headwater"'},
            )
        else:
            target = path + (f"?{request.url.query}" if request.url.query else "")
            location = "/login?next=" + quote(target, safe="")
            if "hx-request" in request.headers:  # htmx: reload the whole page to the login
                response = Response(status_code=401, headers={"HX-Redirect": location})
            else:
                response = RedirectResponse(location, status_code=303)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response


def _login_routes(app: FastAPI, token: str) -> None:
    def login_page(request: Request, next_path: str, error: str | None, status: int) -> Response:
        return templates.TemplateResponse(
            request,
            "login.html",
            {
                "project": project_of(request),
                "nav": [],
                "next": safe_next(next_path),
                "error": error,
            },
            status_code=status,
        )

    @app.get("/login", include_in_schema=False)
    def login_form(request: Request) -> Response:
        return login_page(request, request.query_params.get("next", "/"), None, 200)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        body = await request.body()
        fields: dict[str, Any] = dict(
            parse_qsl(body[:MAX_FORM_BYTES].decode("utf-8", "replace"), keep_blank_values=True)
        )
        given = str(fields.get("token", ""))
        next_path = safe_next(str(fields.get("next", "/")))
        if not hmac.compare_digest(given.encode(), token.encode()):
            return login_page(request, next_path, "That token is not right.", 401)
        expires = int(time.time()) + SESSION_SECONDS
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(
            COOKIE,
            session_value(token, expires),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    @app.post("/logout", include_in_schema=False)
    def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

"""Access control of a self-hosted service: API key, Host allow-list, no cross-site posts,
and security headers on every answer.

One ASGI middleware, outermost, so that even its own refusals carry the headers. Its
answers go through ``errors.error_response`` like every other error.

Why each rule:
- **Host allow-list**: a page on ``evil.example`` can make its name resolve to 127.0.0.1
  (DNS rebinding) and then read this server as same-origin; its requests still say
  ``Host: evil.example``. Loopback names and IP literals cannot be rebound, so they are
  always allowed; other names must be listed.
- **Cross-site posts**: a form on another site can POST multipart to this server without a
  CORS preflight. Browsers name the sender in ``Origin`` and ``Sec-Fetch-Site``; a
  state-changing request whose sender is another origin is refused. Clients that are not
  browsers (curl, scripts) send neither and are not affected; with an API key a cross-site
  form could not send it anyway (a custom header needs a preflight this server never grants).
- **API key**: compared in constant time; the page, its static files, liveness/readiness and
  the API docs stay public (they hold no data), everything else needs it.
- **Keyless servers answer loopback connections only** unless ``allow_no_api_key``: this holds
  however the app is started (``songmap serve`` checks it too, with a clearer message).
- **WebSockets** (``/live``) follow the same rules, refused before the handshake completes
  (HTTP 403 to the client, the reason in the server log). Browsers send no CORS preflight for
  a WebSocket and always name the page in ``Origin``, so a cross-site page could otherwise
  open a stream with the user's access (cross-site WebSocket hijacking): ``Origin``, when
  present, must be this server. A browser cannot set headers on a WebSocket, so the key may
  also come as the query parameter ``key`` there (only there): query strings can end up in
  proxy access logs, which is why plain HTTP requests do not accept it.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from songmap.api.errors import (
    CrossSiteRequestError,
    HostNotAllowedError,
    NotAuthorizedError,
    error_response,
)
from songmap.api.settings import ServeSettings

log = logging.getLogger("songmap.api")

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "localhost.localdomain"})
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PUBLIC_PATHS = frozenset({"/", "/healthz", "/readyz", "/docs", "/redoc", "/openapi.json",
                           "/favicon.ico"})
_PUBLIC_PREFIXES = ("/static/", "/docs-static/")
_DOCS_PATHS = frozenset({"/docs", "/redoc"})

#: The page loads only its own script and style sheet and plays the dropped file from a
#: blob: URL; it sets styles through the CSSOM (``el.style``), which CSP does not restrict.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")
#: Swagger UI and ReDoc start from an inline script (and load from a CDN when
#: fastapi-offline is missing); ReDoc runs a worker from a blob: URL.
DOCS_CSP = ("default-src 'self' https://cdn.jsdelivr.net; "
            "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "img-src 'self' data: https:; worker-src 'self' blob:; object-src 'none'; "
            "base-uri 'none'; frame-ancestors 'none'")
_COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP literal, IPv6 with or without brackets) is loopback."""
    name = host.strip().lower().strip("[]")
    if name in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def split_host(value: str) -> str:
    """The host name of a ``Host`` header value (``[::1]:8000`` -> ``::1``), lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1: value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def host_allowed(host: str, *, allowed: tuple[str, ...], bind_host: str) -> bool:
    """Whether a request's ``Host`` name may reach this server (see the module docstring)."""
    name = host.rstrip(".")
    if not host:  # no Host at all (HTTP/1.0): not a browser, so not a rebinding page
        return True
    if not name:
        return False
    if is_loopback(name) or _is_ip(name) or name == bind_host.lower().strip("[]"):
        return True
    for pattern in allowed:
        if pattern == "*" or name == pattern:
            return True
        if pattern.startswith(".") and (name.endswith(pattern) or name == pattern[1:]):
            return True
    return False


def exposure_problem(settings: ServeSettings) -> str | None:
    """Why these settings must not start, or ``None``: listening beyond loopback needs a
    key or an explicit ``allow_no_api_key``."""
    if settings.api_key is not None or settings.allow_no_api_key or is_loopback(settings.host):
        return None
    return (f"listening on {settings.host} lets other machines use this server; set an API "
            "key (--api-key or SONGMAP_API_KEY) or pass --no-api-key to serve without one")


def _origin_matches(origin: str, host_header: str, scheme: str) -> bool:
    parts = urlsplit(origin)
    if not parts.hostname:
        return False
    default = {"http": 80, "https": 443, "ws": 80, "wss": 443}
    origin_port = parts.port or default.get(parts.scheme)
    host = split_host(host_header)
    rest = host_header.strip().lower().removeprefix(f"[{host}]").removeprefix(host)
    host_port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else default.get(scheme)
    return parts.hostname.lower() == host and origin_port == host_port


def presented_key(headers: dict[bytes, bytes]) -> bytes | None:
    """The key a request carries in ``Authorization: Bearer`` or ``X-API-Key``."""
    auth = headers.get(b"authorization", b"")
    scheme, _, token = auth.partition(b" ")
    if scheme.lower() == b"bearer" and token.strip():
        return token.strip()
    key = headers.get(b"x-api-key", b"").strip()
    return key or None


class AccessGuard:
    """ASGI middleware applying the rules of this module to every HTTP request."""

    def __init__(self, app: Any, *, settings: ServeSettings) -> None:
        self.app = app
        self.key = settings.api_key.get_secret_value().encode() if settings.api_key else None
        self.allow_remote_without_key = settings.allow_no_api_key
        self.allowed = settings.allowed_host_names
        self.bind_host = settings.host

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        csp = (DOCS_CSP if path in _DOCS_PATHS else PAGE_CSP).encode()

        async def with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in (b"content-security-policy",)]
                headers += [(b"content-security-policy", csp), *_COMMON_HEADERS]
                message = {**message, "headers": headers}
            await send(message)

        problem = self.refusal(scope)
        if problem is not None:
            await error_response(problem)(scope, receive, with_headers)
            return
        await self.app(scope, receive, with_headers)

    async def _websocket(self, scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
                         send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        problem = self.refusal(scope)
        if problem is None:
            await self.app(scope, receive, send)
            return
        log.warning("refused a WebSocket to %s: %s", scope.get("path", ""), problem)
        message = await receive()  # websocket.connect; a close now answers the handshake 403
        if message.get("type") == "websocket.connect":
            await send({"type": "websocket.close", "code": 1008,
                        "reason": str(problem)[:120]})

    def refusal(self, scope: dict[str, Any]) -> Exception | None:
        """The error a request is refused with, or ``None`` to let it through."""
        headers: dict[bytes, bytes] = {}
        for name, value in scope.get("headers", ()):
            headers.setdefault(name.lower(), value)
        websocket = scope.get("type") == "websocket"
        if websocket and b"authorization" not in headers and b"x-api-key" not in headers:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            if query.get("key"):
                headers[b"x-api-key"] = query["key"][0].encode("latin-1")
        host_header = headers.get(b"host", b"").decode("latin-1")
        host = split_host(host_header)
        if not host_allowed(host, allowed=self.allowed, bind_host=self.bind_host):
            log.warning("refused a request for Host %r (not in the allowed hosts)", host_header)
            return HostNotAllowedError(
                f"this server does not answer to the host name {host!r}; if that is its "
                "name, start it with --allowed-hosts " + (host or "NAME"))
        if websocket or scope.get("method", "GET") in _UNSAFE_METHODS:
            site = headers.get(b"sec-fetch-site", b"").decode("latin-1").lower()
            origin = headers.get(b"origin", b"").decode("latin-1")
            if (site and site not in ("same-origin", "none")) or (
                    origin and not _origin_matches(origin, host_header,
                                                   scope.get("scheme", "http"))):
                return CrossSiteRequestError(
                    f"a page of another site ({origin or site}) may not send this request; "
                    "use songmap's own page or a client that is not a browser")
        path = scope.get("path", "")
        public = path in _PUBLIC_PATHS or path.startswith(_PUBLIC_PREFIXES)
        if self.key is not None:
            given = presented_key(headers)
            if not public and (given is None or not hmac.compare_digest(given, self.key)):
                return NotAuthorizedError(
                    "this server needs its API key: send 'Authorization: Bearer KEY' or "
                    "'X-API-Key: KEY'" + (" (or ?key=KEY on a WebSocket)" if websocket else "")
                    if given is None else "the API key is not this server's")
        elif not self.allow_remote_without_key and not public:
            server = (scope.get("server") or ("", 0))[0] or ""
            if _is_ip(server) and not is_loopback(server):
                return NotAuthorizedError(
                    "this server has no API key, so it answers only on loopback; start it "
                    "with --api-key (or --no-api-key to serve everyone)")
        return None

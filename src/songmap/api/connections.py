"""Connection limits uvicorn does not have: a deadline for each request's head and a hard
cap on open connections.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive``, and answers 503
past ``limit_concurrency``, but only once a request has arrived: a client that connects
and sends nothing (or one header byte every few seconds) holds its socket for ever, and
a thousand of them exhaust the process's file descriptors. ``GuardedH11Protocol`` closes a
connection whose request head has not arrived ``header_timeout_s`` after it opened (or
after its previous answer), and closes at once any connection past ``max_connections``.
Slow *bodies* are bounded by the upload reader (``uploads.read_upload``'s idle timeout);
a reverse proxy is still the better guard (README, "Behind a proxy").
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-head deadline and a connection cap."""

    header_timeout_s: float = 10.0
    max_connections: int = 200

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            # Past the cap: no answer is cheaper than a 503 the client may never read.
            transport.close()
            return
        self._arm_head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        timer = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        timer = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
        self._head_timer = self.loop.call_later(
            self.header_timeout_s, self._head_deadline_passed, self.cycle)

    def _head_deadline_passed(self, cycle_when_armed: Any) -> None:
        # A new request head replaces self.cycle; the same cycle means none arrived in time.
        if self.cycle is cycle_when_armed and not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(*, header_timeout_s: float, max_connections: int) -> type[H11Protocol]:
    """A ``GuardedH11Protocol`` class with these limits, for ``uvicorn.run(http=...)``."""
    return type("SongmapH11Protocol", (GuardedH11Protocol,),
                {"header_timeout_s": header_timeout_s, "max_connections": max_connections})



def uvicorn_options(settings: Any) -> dict[str, Any]:
    """The ``uvicorn.run`` / ``uvicorn.Config`` options of ``songmap serve`` for a
    ``ServeSettings``: address, the guarded protocol, connection and keep-alive limits."""
    return {
        "host": settings.host, "port": settings.port, "timeout_graceful_shutdown": 10,
        "http": guarded_protocol(header_timeout_s=settings.header_timeout_s,
                                 max_connections=settings.max_connections),
        "limit_concurrency": settings.max_connections,
        "timeout_keep_alive": settings.keep_alive_s,
        "h11_max_incomplete_event_size": 16 * 1024,  # request heads past 16 KB: refused
    }


def uvicorn_config(app: Any, settings: Any, **extra: Any) -> Any:
    """``uvicorn.Config`` with ``uvicorn_options`` (tests run it in a thread)."""
    import uvicorn

    return uvicorn.Config(app, **uvicorn_options(settings), **extra)

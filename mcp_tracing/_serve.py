"""Serving an ASGI app from the command line (``collect``, ``ui``): loopback by default, bound before it is
announced, stopped cleanly by SIGTERM or Ctrl-C."""

from __future__ import annotations

import ipaddress
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["is_loopback", "listen", "serve_until_stopped", "url"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``127.0.0.1``, ``::1``, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int, command: str) -> socket.socket | None:
    """A socket bound to ``host:port`` and listening (port 0 picks a free one), or ``None`` after one line on
    stderr saying why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
    except OSError as exc:
        listener.close()
        print(f"mcp-tracing {command}: error: cannot listen on {host}:{port} ({exc.strerror or exc})", file=sys.stderr)
        return None
    return listener


def url(listener: socket.socket) -> str:
    """``http://HOST:PORT`` of a bound socket (IPv6 in brackets)."""
    host, port = listener.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve_until_stopped(
    app: Any,
    listener: socket.socket,
    announce: str,
    *,
    limit_concurrency: int | None = None,
    on_stop: Callable[[], None],
) -> int:
    """Serves ``app`` on ``listener`` until SIGTERM or SIGINT; returns exit status 0.

    ``announce`` goes to stderr only now, with the socket already listening: a client that waits for the line
    is never refused (connections wait in the backlog until the server takes them). ``on_stop`` runs last, even
    when serving fails (close the store, say what was done).
    """
    import uvicorn

    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", access_log=False, limit_concurrency=limit_concurrency
    )
    server = uvicorn.Server(config)

    # A stop signal before uvicorn takes them over (it does while it serves) asks it to stop once started; after,
    # uvicorn raises the signal that stopped it again for this handler, which lets the command clean up and end
    # with status 0 (a clean stop).
    def stop(signum: int, frame: object) -> None:
        del signum, frame
        server.should_exit = True

    stops = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, stop) for sig in stops}
    print(announce, file=sys.stderr)
    sys.stderr.flush()
    try:
        server.run(sockets=[listener])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        listener.close()
        on_stop()
    return 0

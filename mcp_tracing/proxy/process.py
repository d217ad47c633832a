"""Running the real server between two pipes: pumping bytes, forwarding signals, the exit code."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from mcp_tracing._core.commands import command_name as command_name
from mcp_tracing._core.stderr_logs import stderr_lines
from mcp_tracing.proxy.framing import Framer
from mcp_tracing.proxy.observer import Proxy

__all__ = ["command_name", "main", "run"]

_logger = logging.getLogger(__name__)
_CHUNK: Final = 64 * 1024
_FORWARDED_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _pump(source: int, target: int, observe: Callable[[bytes, int], None], on_end: Callable[[], None]) -> None:
    """Copies ``source`` to ``target`` as bytes arrive, then lets ``observe`` read them; ``on_end`` at EOF.

    Messages are timed when read, before they are passed on: a request's span starts no earlier than the
    client sent it and a response's ends no later than the client got it.
    """
    framer = Framer(observe)
    try:
        while True:
            chunk = os.read(source, _CHUNK)
            if not chunk:
                break
            read_at = time.time_ns()
            try:
                _write_all(target, chunk)
            except OSError:  # the reader is gone (the server died, or the client closed): stop copying
                break
            framer.feed(chunk, read_at)
    except OSError:
        _logger.debug("mcp_tracing wrap: read failed", exc_info=True)
    finally:
        on_end()


def run(command: Sequence[str], proxy: Proxy, *, stdin: int = 0, stdout: int = 1) -> int:
    """Runs ``command`` behind ``stdin``/``stdout``; returns its exit status (negative: the signal it died of).
    Its stderr goes where this process's goes, each line also a log record under the session span."""
    lines = stderr_lines(sys.stderr, proxy.server_name or command_name(command), proxy.session_context())
    try:
        child = subprocess.Popen(
            list(command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=lines.child_end if lines is not None else None,
            bufsize=0,
        )
    except OSError as exc:
        proxy.abandon()  # nothing ran: no trace of it (a one-span trace would look like a server that did)
        print(f"mcp-tracing wrap: cannot start {command[0]}: {exc.strerror or exc}", file=sys.stderr)
        return 127
    finally:
        if lines is not None:
            lines.spawned()
    assert child.stdin is not None and child.stdout is not None
    to_server, from_server = child.stdin, child.stdout
    previous = _forward_signals(child)

    def close_server_stdin() -> None:
        try:
            to_server.close()
        except OSError:
            pass

    up = threading.Thread(
        target=_pump, args=(stdin, to_server.fileno(), proxy.from_client, close_server_stdin), daemon=True
    )

    def close_server_stdout() -> None:
        # A client that stopped reading: the server's next write fails as it would unwrapped (SIGPIPE, EPIPE),
        # instead of blocking on a pipe nobody reads.
        try:
            from_server.close()
        except OSError:
            pass

    up.start()
    try:
        _pump(from_server.fileno(), stdout, proxy.from_server, close_server_stdout)
        status = child.wait()
    finally:
        _restore_signals(previous)
    if lines is not None:
        lines.wait(1.0)  # the last lines, written as it exited
    proxy.close(exited=True)
    return status


def _forward_signals(child: subprocess.Popen[bytes]) -> dict[int, Any]:
    previous: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous

    def forward(signum: int, _frame: object) -> None:
        try:
            child.send_signal(signum)
        except OSError:
            pass

    for signum in _FORWARDED_SIGNALS:
        try:
            previous[signum] = signal.signal(signum, forward)
        except (OSError, ValueError):  # pragma: no cover - a signal this platform does not have
            continue
    return previous


def _restore_signals(previous: Mapping[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def main(argv: Sequence[str], *, server_name: str | None = None, service_name: str | None = None) -> int:
    """``mcp-tracing wrap``: configures tracing, runs the real server behind this process, exits as it did."""
    from mcp_tracing._core.shutdown import flush
    from mcp_tracing.config import configure

    if not argv:
        print("mcp-tracing wrap: no server command (mcp-tracing wrap -- COMMAND ...)", file=sys.stderr)
        return 2
    name = command_name(argv)
    provider = configure(service_name or os.environ.get("OTEL_SERVICE_NAME") or name)
    proxy = Proxy(server_name=server_name, fallback_name=name)
    status = run(argv, proxy)
    flush(provider)
    if status < 0:  # died of a signal: so does the proxy, after the flush
        try:
            sys.stdout.flush()
        except OSError:  # the client is gone too
            pass
        try:
            signal.signal(-status, signal.SIG_DFL)
        except (OSError, ValueError):  # SIGKILL and SIGSTOP cannot be handled: they need no reset
            pass
        os.kill(os.getpid(), -status)
    return status

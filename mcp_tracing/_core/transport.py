"""What a client transport knows about its connection, shared by the transport and the session's spans."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from mcp_tracing._core import attributes as attr


@dataclass
class TransportInfo:
    """Facts about one client connection; ``session_id`` is filled in by the HTTP transport as it learns it."""

    transport: str
    server_address: str | None = None
    server_port: int | None = None
    session_id: str | None = None
    server_name: str | None = None

    @classmethod
    def for_url(cls, url: str, *, server_name: str | None = None) -> TransportInfo:
        """A TCP connection to ``url``'s host and port (the scheme's default port when it names none)."""
        split = urlsplit(url)
        port = split.port or (443 if split.scheme == "https" else 80)
        return cls(attr.TRANSPORT_TCP, split.hostname, port, server_name=server_name)

"""What a client transport knows about its connection, shared by the transport and the session's spans."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TransportInfo:
    """Facts about one client connection; ``session_id`` is filled in by the HTTP transport as it learns it."""

    transport: str
    server_address: str | None = None
    server_port: int | None = None
    session_id: str | None = None
    server_name: str | None = None

"""Reading the HTTP requests a probe server recorded."""

from __future__ import annotations

from typing import Any


def header(request: dict[str, Any], name: str) -> str | None:
    values = [v for k, v in request["headers"] if k == name]
    assert len(values) <= 1
    return values[0] if values else None

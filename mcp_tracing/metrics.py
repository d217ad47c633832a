"""The OpenTelemetry MCP semantic conventions' four histograms, in seconds.

* ``mcp.client.operation.duration``: a request or notification as the sender sees it;
* ``mcp.server.operation.duration``: a request or notification as the receiver sees it;
* ``mcp.client.session.duration``: a client transport (``stdio_client``, ``streamable_http_client``) from
  open to close;
* ``mcp.server.session.duration``: a stdio server's session, from the start of serving to stdin EOF.

Bucket boundaries are the conventions' advice ``[0.01 ... 300]``. Attributes are the conventions' set for
each metric, taken from the span's attributes (never the high-cardinality ones: ids, hashes, sizes, URIs).
Operations are measured whether or not their trace is sampled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Mapping
from contextlib import contextmanager
from typing import Final

from opentelemetry.metrics import Histogram, MeterProvider, NoOpHistogram, get_meter
from opentelemetry.util.types import AttributeValue

from mcp_tracing._core import attributes as attr
from mcp_tracing._core.transport import TransportInfo
from mcp_tracing._version import __version__

__all__ = [
    "BUCKETS",
    "CLIENT_OPERATION_ATTRIBUTES",
    "CLIENT_SESSION_ATTRIBUTES",
    "McpMetrics",
    "SERVER_OPERATION_ATTRIBUTES",
    "SERVER_SESSION_ATTRIBUTES",
    "measured_session",
]

BUCKETS: Final = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

_NETWORK: Final = frozenset(
    {attr.MCP_PROTOCOL_VERSION, attr.NETWORK_TRANSPORT, attr.NETWORK_PROTOCOL_NAME, "network.protocol.version"}
)
_OPERATION: Final = _NETWORK | {
    attr.MCP_METHOD_NAME,
    attr.ERROR_TYPE,
    attr.GEN_AI_PROMPT_NAME,
    attr.GEN_AI_TOOL_NAME,
    attr.RPC_RESPONSE_STATUS_CODE,
    attr.GEN_AI_OPERATION_NAME,
}
CLIENT_OPERATION_ATTRIBUTES: Final = _OPERATION | {attr.SERVER_ADDRESS, attr.SERVER_PORT}
SERVER_OPERATION_ATTRIBUTES: Final = _OPERATION
CLIENT_SESSION_ATTRIBUTES: Final = _NETWORK | {attr.ERROR_TYPE, attr.SERVER_ADDRESS, attr.SERVER_PORT}
SERVER_SESSION_ATTRIBUTES: Final = _NETWORK | {attr.ERROR_TYPE}


@contextmanager
def measured_session(info: TransportInfo, meter_provider: MeterProvider | None = None) -> Generator[None, None, None]:
    """Records ``mcp.client.session.duration`` for a client transport, from open to close."""
    started = time.perf_counter()
    error: str | None = None
    try:
        yield
    except BaseException as exc:
        error = type(exc).__qualname__
        raise
    finally:
        attributes: dict[str, AttributeValue] = {attr.NETWORK_TRANSPORT: info.transport}
        if info.transport == attr.TRANSPORT_TCP:
            attributes[attr.NETWORK_PROTOCOL_NAME] = "http"
        if info.server_address:
            attributes[attr.SERVER_ADDRESS] = info.server_address
        if info.server_port:
            attributes[attr.SERVER_PORT] = info.server_port
        if error is not None:
            attributes[attr.ERROR_TYPE] = error
        try:
            McpMetrics(meter_provider).client_session(time.perf_counter() - started, attributes)
        except Exception:
            logging.getLogger(__name__).exception("mcp_tracing could not record a session duration")


def _only(attributes: Mapping[str, AttributeValue] | None, allowed: frozenset[str]) -> dict[str, AttributeValue]:
    return {key: value for key, value in (attributes or {}).items() if key in allowed}


class McpMetrics:
    """The four histograms, on ``meter_provider`` (the global one when omitted)."""

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        meter = get_meter("mcp_tracing", __version__, meter_provider)

        def histogram(name: str, description: str) -> Histogram:
            return meter.create_histogram(
                name, unit="s", description=description, explicit_bucket_boundaries_advisory=list(BUCKETS)
            )

        self._client_operation = histogram(
            "mcp.client.operation.duration",
            "MCP request or notification duration as observed on the sender from the time it was sent until "
            "the response or ack is received.",
        )
        self._server_operation = histogram(
            "mcp.server.operation.duration",
            "MCP request or notification duration as observed on the receiver from the time it was received "
            "until the result or ack is sent.",
        )
        self._client_session = histogram(
            "mcp.client.session.duration", "The duration of the MCP session as observed on the MCP client."
        )
        self._server_session = histogram(
            "mcp.server.session.duration", "The duration of the MCP session as observed on the MCP server."
        )

    @property
    def enabled(self) -> bool:
        """False while nothing records: a no-op meter provider, or the API's global proxy before an SDK meter
        provider is set (callers then skip building attributes nobody records). Asked at each use, since a
        proxy starts recording once ``metrics.set_meter_provider`` is called."""
        histogram: object = self._client_operation
        # The API's proxy instrument keeps what it forwards to in a private field, None until a provider is set.
        real: object = getattr(histogram, "_real_instrument", histogram)
        return real is not None and not isinstance(real, NoOpHistogram)

    def client_operation(self, seconds: float, attributes: Mapping[str, AttributeValue] | None) -> None:
        self._client_operation.record(seconds, _only(attributes, CLIENT_OPERATION_ATTRIBUTES))

    def server_operation(self, seconds: float, attributes: Mapping[str, AttributeValue] | None) -> None:
        self._server_operation.record(seconds, _only(attributes, SERVER_OPERATION_ATTRIBUTES))

    def client_session(self, seconds: float, attributes: Mapping[str, AttributeValue] | None) -> None:
        self._client_session.record(seconds, _only(attributes, CLIENT_SESSION_ATTRIBUTES))

    def server_session(self, seconds: float, attributes: Mapping[str, AttributeValue] | None) -> None:
        self._server_session.record(seconds, _only(attributes, SERVER_SESSION_ATTRIBUTES))

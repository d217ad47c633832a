"""What a process started from this one needs, to export where this one does, under its own name.

A spawned stdio server gets only what its spawner passes (the SDK adds ``HOME LOGNAME PATH SHELL TERM
USER``), and may run with another ``HOME``, ``XDG_DATA_HOME`` or working directory. So the spawner passes
what it resolved, not what it derived it from:

* every ``OTEL_*`` and ``MCP_TRACING_*`` variable, except the service name and resource attributes (the
  child names itself) and the trace context (``TRACEPARENT``/``TRACESTATE``/``BAGGAGE``, set per spawn);
  a ``console`` exporter is left out of ``OTEL_{TRACES,METRICS,LOGS}_EXPORTER`` (a stdio server's stdout is
  the protocol; ``none`` when nothing else is left);
* ``MCP_TRACING_STORE``: the absolute path of the store this process writes (or would write);
* ``MCP_TRACING_HASH_KEY_FILE``: the absolute path of the arguments-hash key (unless
  ``MCP_TRACING_HASH_KEY`` itself is set), so client and server spans of one call hash alike;
* certificate and key files named in ``OTEL_EXPORTER_OTLP_*`` made absolute.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

from mcp_tracing._core.paths import absolute

__all__ = ["EXPORTER_VARIABLES", "FORWARD_PREFIXES", "NOT_FORWARDED", "telemetry_environment"]

FORWARD_PREFIXES: Final = ("OTEL_", "MCP_TRACING_")
"""Variables of this process whose names start with these are copied into a started process's env."""

NOT_FORWARDED: Final = frozenset({"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"})
"""Never copied: the child names itself. Pass them in ``StdioServerParameters.env`` to set them."""

EXPORTER_VARIABLES: Final = ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER")
"""Forwarded without ``console``: a stdio server's stdout is the protocol, and console exporters write there."""

_PROPAGATED: Final = frozenset({"TRACEPARENT", "TRACESTATE", "BAGGAGE"})
_FILE_SUFFIXES: Final = ("_CERTIFICATE", "_CLIENT_KEY")


def telemetry_environment(source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables above, from ``source`` (``os.environ`` and this process's own store when omitted)."""
    from mcp_tracing.privacy import HASH_KEY_ENV, HASH_KEY_FILE_ENV, key_file
    from mcp_tracing.store import STORE_ENV, store_for_children

    env = os.environ if source is None else source
    out = {
        key: value
        for key, value in env.items()
        if key.startswith(FORWARD_PREFIXES) and key not in NOT_FORWARDED and key not in _PROPAGATED
    }
    for key in EXPORTER_VARIABLES:
        if key in out:
            kept = [name.strip() for name in out[key].split(",") if name.strip() and name.strip() != "console"]
            out[key] = ",".join(kept) or "none"
    for key, value in out.items():
        if key.startswith("OTEL_EXPORTER_OTLP_") and key.endswith(_FILE_SUFFIXES) and value:
            out[key] = str(absolute(value))
    out[STORE_ENV] = str(store_for_children(source))
    if not env.get(HASH_KEY_ENV):
        out[HASH_KEY_FILE_ENV] = str(key_file(env))
    return out

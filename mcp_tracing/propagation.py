"""The three carriers of trace context across an MCP boundary.

* ``params._meta`` of every MCP request and notification (SEP-414: unprefixed ``traceparent``,
  ``tracestate``, ``baggage``);
* the environment of a spawned stdio server (the OpenTelemetry env-carrier spec: ``TRACEPARENT``,
  ``TRACESTATE``, ``BAGGAGE``, keys normalised);
* HTTP headers.

Everything goes through the globally configured propagators (``OTEL_PROPAGATORS``), never a
hard-coded W3C propagator, so a user who configured B3 gets B3 keys in all three carriers.

Reading is forgiving by contract: a malformed, oversized or wrong-typed carrier means "no context"
(``None``) and never raises, so a bad peer cannot break a call.

Usage::

    from mcp_tracing import propagation

    meta = propagation.inject_meta({"custom": 1})       # {"custom": 1, "traceparent": "00-..."}
    ctx = propagation.extract_meta(meta)                 # Context, or None
    env = propagation.inject_env(dict(os.environ))       # adds TRACEPARENT/TRACESTATE/BAGGAGE
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Final

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter, TextMapPropagator

__all__ = [
    "MAX_CARRIER_VALUE_LENGTH",
    "EnvGetter",
    "EnvSetter",
    "HeaderGetter",
    "MetaGetter",
    "MetaSetter",
    "env_getter",
    "env_setter",
    "extract_env",
    "extract_headers",
    "extract_meta",
    "header_getter",
    "inject_env",
    "inject_headers",
    "inject_meta",
    "meta_getter",
    "meta_setter",
    "propagator_fields",
]

_logger = logging.getLogger(__name__)

MAX_CARRIER_VALUE_LENGTH: Final = 8192
"""Longest carrier value read, in characters (W3C Baggage's limit; SEP-2028 proposes the same cap).
Longer values are ignored as if absent, before any propagator parses them."""


def _usable(value: object) -> str | None:
    if isinstance(value, str) and len(value) <= MAX_CARRIER_VALUE_LENGTH:
        return value
    return None


class MetaGetter(Getter[Mapping[str, object]]):
    """Reads trace context from an MCP ``params._meta`` mapping.

    Only string values are returned: ``_meta`` is arbitrary JSON from the peer, and OpenTelemetry's
    default getter would hand an ``int`` to the propagator, which then raises.
    """

    def get(self, carrier: Mapping[str, object], key: str) -> list[str] | None:
        value = _usable(carrier.get(key))
        return None if value is None else [value]

    def keys(self, carrier: Mapping[str, object]) -> list[str]:
        return [key for key in carrier if isinstance(key, str)]  # pyright: ignore[reportUnnecessaryIsInstance]


class MetaSetter(Setter[MutableMapping[str, object]]):
    """Writes trace context into an MCP ``params._meta`` mapping, keys unprefixed (SEP-414)."""

    def set(self, carrier: MutableMapping[str, object], key: str, value: str) -> None:
        carrier[key] = value


_NOT_ENV_CHAR = re.compile(r"[^A-Za-z0-9_]")


def _normalize_env_key(key: str) -> str:
    # The env-carrier spec's normalisation: empty -> "_", upper-case, non [A-Za-z0-9_] -> "_",
    # leading digit prefixed with "_". Kept local because opentelemetry's own module is private.
    if not key:
        return "_"
    result = _NOT_ENV_CHAR.sub("_", key).upper()
    return "_" + result if result[0].isdigit() else result


def _is_normalized_env_key(key: str) -> bool:
    return bool(key) and not key[0].isdigit() and _NOT_ENV_CHAR.search(key) is None and key == key.upper()


try:  # OpenTelemetry's own env carriers (opentelemetry-api >= 1.39; private upstream), used where present
    from opentelemetry.propagators import _envcarrier as _otel_env
except ImportError:  # pragma: no cover - older opentelemetry-api
    _otel_env = None


class EnvGetter(Getter[Mapping[str, str]]):
    """Reads trace context from environment variables (OpenTelemetry env-carrier spec).

    ``traceparent`` is read from ``TRACEPARENT``; a literal lower-case variable is never read. Delegates to
    OpenTelemetry's ``EnvironmentGetter`` where it can be imported, and adds the value checks of every
    carrier here (strings only, at most ``MAX_CARRIER_VALUE_LENGTH``).
    """

    def __init__(self) -> None:
        self._otel: Getter[Mapping[str, str]] | None = _otel_env.EnvironmentGetter() if _otel_env else None

    def get(self, carrier: Mapping[str, str], key: str) -> list[str] | None:
        if self._otel is not None:
            values = self._otel.get(carrier, key)
            value = _usable(values[0]) if values else None
        else:
            value = _usable(carrier.get(_normalize_env_key(key)))
        return None if value is None else [value]

    def keys(self, carrier: Mapping[str, str]) -> list[str]:
        if self._otel is not None:
            return self._otel.keys(carrier)
        return [key for key in carrier if _is_normalized_env_key(key)]


class EnvSetter(Setter[MutableMapping[str, str]]):
    """Writes trace context as environment variables, keys normalised (``traceparent`` -> ``TRACEPARENT``).

    Delegates to OpenTelemetry's ``EnvironmentSetter`` where it can be imported.
    """

    def __init__(self) -> None:
        self._otel: Setter[MutableMapping[str, str]] | None = _otel_env.EnvironmentSetter() if _otel_env else None

    def set(self, carrier: MutableMapping[str, str], key: str, value: str) -> None:
        if self._otel is not None:
            self._otel.set(carrier, key, value)
        else:
            carrier[_normalize_env_key(key)] = value


class HeaderGetter(Getter[Mapping[str, str]]):
    """Reads trace context from an HTTP header mapping, case-insensitively.

    A header that arrived more than once is ignored (the W3C spec treats a repeated ``traceparent``
    as invalid), which callers express by passing the joined value, e.g. ``"a,b"``.
    """

    def get(self, carrier: Mapping[str, str], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            lowered = key.lower()
            value = next((v for k, v in carrier.items() if k.lower() == lowered), None)
        value = _usable(value)
        return None if value is None else [value]

    def keys(self, carrier: Mapping[str, str]) -> list[str]:
        return list(carrier)


class _LowercaseHeaderGetter(HeaderGetter):
    """``HeaderGetter`` for a mapping whose keys are known to be lower case (an ASGI scope's): one look-up
    per key instead of a scan of every header for each one that is absent."""

    def get(self, carrier: Mapping[str, str], key: str) -> list[str] | None:
        value = _usable(carrier.get(key.lower()))
        return None if value is None else [value]


meta_getter: Final = MetaGetter()
meta_setter: Final = MetaSetter()
env_getter: Final = EnvGetter()
env_setter: Final = EnvSetter()
header_getter: Final = HeaderGetter()
_lowercase_header_getter: Final = _LowercaseHeaderGetter()


def propagator_fields() -> frozenset[str]:
    """The carrier keys the global propagator writes (``traceparent``, ``tracestate``, ``baggage`` by default)."""
    propagator = propagate.get_global_textmap()
    try:
        return _fields_of(propagator)
    except TypeError:  # a propagator that is not hashable
        return frozenset(propagator.fields)


@functools.lru_cache(maxsize=8)
def _fields_of(propagator: TextMapPropagator) -> frozenset[str]:
    # Per propagator, once (a composite builds its set anew at each ask); a new global one is a new key.
    return frozenset(propagator.fields)


def _valid_or_none(ctx: Context) -> Context | None:
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def _extract(carrier: Mapping[str, object] | Mapping[str, str], getter: Getter[object]) -> Context | None:
    try:
        return _valid_or_none(propagate.extract(carrier, context=Context(), getter=getter))
    except Exception:  # a third-party propagator must not break the call
        _logger.debug("ignoring a carrier the propagators could not read", exc_info=True)
        return None


def extract_meta(meta: object) -> Context | None:
    """Extracts the context carried in an MCP ``params._meta``.

    Args:
        meta: the ``_meta`` value as received: a mapping, a pydantic model with extra fields, or anything
            else (which counts as absent).

    Returns:
        A context holding a valid remote span (and any baggage), or ``None`` when ``meta`` carries no
        valid trace context. Never raises.
    """
    mapping = _as_mapping(meta)
    return None if mapping is None else _extract(mapping, meta_getter)  # pyright: ignore[reportArgumentType]


def _as_mapping(meta: object) -> Mapping[str, object] | None:
    if isinstance(meta, Mapping):
        return meta  # pyright: ignore[reportUnknownVariableType]
    # mcp 1.x hands servers a pydantic ``RequestParams.Meta``: the SEP-414 keys are its extra fields.
    extra = getattr(meta, "model_extra", None)
    return extra if isinstance(extra, Mapping) else None  # pyright: ignore[reportUnknownVariableType]


def extract_env(env: Mapping[str, str] | None = None) -> Context | None:
    """Extracts the context a spawning process put in the environment.

    Args:
        env: the environment to read; ``os.environ`` when omitted.

    Returns:
        A context holding the spawner's span, or ``None`` when the environment carries no valid context
        (absent, malformed, all-zero ids, oversized). Never raises.
    """
    return _extract(os.environ if env is None else env, env_getter)  # pyright: ignore[reportArgumentType]


def extract_headers(headers: Mapping[str, str], *, lowercase: bool = False) -> Context | None:
    """Extracts the context carried in HTTP request headers, or ``None``. Never raises.

    Args:
        headers: header names to values; names are matched case-insensitively.
        lowercase: every name in ``headers`` is already lower case (as an ASGI server gives them), so each
            is looked up once instead of compared with every header.
    """
    getter = _lowercase_header_getter if lowercase else header_getter
    return _extract(headers, getter)  # pyright: ignore[reportArgumentType]


def inject_meta(meta: Mapping[str, object] | None = None, *, context: Context | None = None) -> dict[str, object]:
    """Returns a copy of ``meta`` carrying ``context`` (the current context by default).

    Keys the propagator owns are removed from the copy first, so a re-sent ``_meta`` never carries a
    stale ``tracestate`` next to a fresh ``traceparent`` (the ``TextMapPropagator.fields`` contract).
    Every other key is kept.
    """
    fields = propagator_fields()
    out: dict[str, object] = {k: v for k, v in (meta or {}).items() if k not in fields}
    propagate.inject(out, context=context, setter=meta_setter)
    return out


def inject_env(
    env: MutableMapping[str, str], *, context: Context | None = None, keep_existing: bool = True
) -> MutableMapping[str, str]:
    """Writes ``context`` (the current context by default) into ``env`` as ``TRACEPARENT`` etc.

    Args:
        env: the child's environment, modified in place and returned.
        context: the context to carry; the current one when omitted.
        keep_existing: when a ``TRACEPARENT`` (or another variable the propagator writes) is already
            in ``env``, the caller chose it explicitly and every propagator variable is left as it is.
    """
    keys = {_normalize_env_key(field) for field in propagator_fields()}
    if keep_existing and any(key in env for key in keys):
        return env
    for key in keys:
        env.pop(key, None)
    propagate.inject(env, context=context, setter=env_setter)
    return env


def inject_headers(headers: MutableMapping[str, str], *, context: Context | None = None) -> None:
    """Writes ``context`` (the current context by default) into HTTP request headers, replacing old values."""
    _drop(headers, propagator_fields())
    propagate.inject(headers, context=context)


def _drop(headers: MutableMapping[str, str], fields: Iterable[str]) -> None:
    lowered = {field.lower() for field in fields}
    for key in [k for k in headers if k.lower() in lowered]:
        del headers[key]

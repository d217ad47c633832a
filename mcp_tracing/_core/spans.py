"""Span bookkeeping shared by the client and server sides: names, attributes and outcomes of one MCP message.

Nothing here knows the SDK version: callers hand over plain method names, ``params`` mappings and
results (dicts or pydantic models), and the SDK adapters (``_sdk``) do the translation.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, cast

from opentelemetry.trace import Span, StatusCode
from opentelemetry.util.types import AttributeValue

from mcp_tracing._core import attributes as attr
from mcp_tracing._core.bounds import SHAPE_LIMIT, URI_LIMIT, bounded
from mcp_tracing.privacy import Privacy, args_hash, hash_key

_logger = logging.getLogger(__name__)


def target_of(method: str, params: Mapping[str, Any] | None) -> str | None:
    """The span-name target of the conventions: the tool or prompt name."""
    if params is None or method not in (attr.TOOLS_CALL, attr.PROMPTS_GET):
        return None
    name = params.get("name")
    return bounded(name) if isinstance(name, str) else None


def span_name(method: str, params: Mapping[str, Any] | None) -> str:
    """``{mcp.method.name} {target}``, or the method alone when there is no target."""
    target = target_of(method, params)
    method = bounded(method)
    return f"{method} {target}" if target else method


def message_attributes(
    method: str,
    params: Mapping[str, Any] | None,
    *,
    request_id: object = None,
    protocol_version: str | None = None,
    transport: str | None = None,
    server_name: str | None = None,
) -> dict[str, AttributeValue]:
    """The attributes known when a message is sent or received, so samplers can decide on them."""
    attributes: dict[str, AttributeValue] = {attr.MCP_METHOD_NAME: bounded(method)}
    target = target_of(method, params)
    if method == attr.TOOLS_CALL:
        attributes[attr.GEN_AI_OPERATION_NAME] = attr.OPERATION_EXECUTE_TOOL
        if target is not None:
            attributes[attr.GEN_AI_TOOL_NAME] = target
    elif method == attr.PROMPTS_GET and target is not None:
        attributes[attr.GEN_AI_PROMPT_NAME] = target
    if params is not None and method.startswith(("resources/", "notifications/resources/")):
        uri = params.get("uri")
        if isinstance(uri, str):
            attributes[attr.MCP_RESOURCE_URI] = bounded(uri, URI_LIMIT)
    if isinstance(request_id, str | int | float) and not isinstance(request_id, bool):  # what JSON-RPC allows
        attributes[attr.JSONRPC_REQUEST_ID] = bounded(str(request_id))
    if protocol_version:
        attributes[attr.MCP_PROTOCOL_VERSION] = bounded(protocol_version)
    if transport:
        attributes[attr.NETWORK_TRANSPORT] = transport
    if server_name:
        attributes[attr.SERVER_NAME] = bounded(server_name)
    return attributes


MODERN_PROTOCOL = "2026-07-28"


def has_sessions(protocol_version: str | None) -> bool:
    """``mcp.session.id`` MUST NOT be set from the 2026-07-28 protocol on: it has no sessions."""
    return protocol_version is None or protocol_version < MODERN_PROTOCOL


DEFAULT_PRIVACY = Privacy()


class SessionKey:
    """The arguments-hash key of one traced session or server: resolved at its first hash (``hash_key()``,
    which reads the environment) and kept, since the look-up costs a third of the hash. Call it for the key."""

    __slots__ = ("_key",)

    def __init__(self) -> None:
        self._key: bytes | None = None

    def __call__(self) -> bytes:
        if self._key is None:
            self._key = hash_key()
        return self._key


def record_arguments(
    span: Span,
    method: str,
    params: Mapping[str, Any] | None,
    privacy: Privacy = DEFAULT_PRIVACY,
    key: Callable[[], bytes] | None = None,
) -> None:
    """Adds the keyed hash of a tool call's arguments and their names; the values only if ``privacy`` says so.
    ``key`` gives the hash key (resolved from the environment at each call when omitted)."""
    if method != attr.TOOLS_CALL or params is None or not span.is_recording():
        return
    arguments: object = params.get("arguments")
    digest = args_hash(arguments, key=key() if key is not None and arguments is not None else None)
    shape = _shape(arguments)
    if digest is not None and shape is not None:
        span.set_attributes({attr.TOOL_ARGS_HASH: digest, attr.TOOL_ARGS_SHAPE: shape})
    elif digest is not None:
        span.set_attribute(attr.TOOL_ARGS_HASH, digest)
    if arguments is not None and privacy.captures(target_of(method, params)):
        span.set_attribute(attr.GEN_AI_TOOL_CALL_ARGUMENTS, privacy.render(arguments))


def record_progress(span: Span, progress: float, total: float | None) -> None:
    """One progress report as an ``mcp.progress`` event on the span of the request it reports on (the free-text
    message is not recorded). A report that arrives after its request ended is dropped."""
    if not span.is_recording():
        return
    attributes: dict[str, AttributeValue] = {attr.PROGRESS_VALUE: float(progress)}
    if total is not None:
        attributes[attr.PROGRESS_TOTAL] = float(total)
    span.add_event(attr.PROGRESS_EVENT, attributes)


def _shape(arguments: object) -> str | None:
    """The argument names, never their values: what ``analyze`` compares to find N+1 calls."""
    if not isinstance(arguments, Mapping):
        return None
    return bounded(",".join(sorted(str(k) for k in cast(Mapping[object, object], arguments))), SHAPE_LIMIT)


def field(message: object, *names: str) -> object:
    """The first of ``names`` found in a wire dict or an SDK model (1.x ``RootModel`` unwrapped), else None."""
    message = _unwrap(message)
    if isinstance(message, Mapping):
        for name in names:
            if name in message:
                return message[name]  # pyright: ignore[reportUnknownVariableType]
        return None
    # A pydantic model answers a missing attribute by raising from a Python __getattr__ (~3 µs a name):
    # its declared fields and extra values are looked up first, the generic way only for anything else.
    fields: object = getattr(type(message), "__pydantic_fields__", None)
    if isinstance(fields, Mapping):
        extra: object = getattr(message, "__pydantic_extra__", None)
        for name in names:
            if name in fields:
                return getattr(message, name)
            if isinstance(extra, Mapping) and name in extra:
                return cast(Mapping[str, object], extra)[name]
    for name in names:
        if hasattr(message, name):
            return getattr(message, name)
    return None


def _unwrap(result: object) -> object:
    # mcp 1.x wraps results in a ``ServerResult``/``ClientResult`` RootModel.
    if isinstance(result, Mapping):
        return cast(object, result)
    cls = type(result)
    if getattr(cls, "__pydantic_root_model__", False):
        return cast(Any, result).root
    if hasattr(cls, "__pydantic_fields__"):  # any other model: never a wrapper (and no exception to ask it)
        return result
    root: object = getattr(result, "root", None)
    return result if root is None else root


_COMPACT: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)
"""Wire-like JSON, built once (``json.dumps`` with options builds an encoder per call)."""


def result_size(result: object) -> int | None:
    """Bytes of the result as JSON on the wire."""
    result = _unwrap(result)
    try:
        dump = getattr(result, "model_dump_json", None)
        if dump is not None:
            return len(dump(by_alias=True, exclude_none=True).encode())
        return len(_COMPACT.encode(result).encode())
    except Exception:
        _logger.debug("cannot size a result", exc_info=True)
        return None


def is_tool_error(result: object) -> bool:
    """``CallToolResult.isError`` as the wire would carry it (model or dict, 1.x or 2.x)."""
    return field(result, "isError", "is_error") is True


@dataclass(frozen=True)
class Outcome:
    """What a ``tools/call`` span records of a successful result: small, whatever the result's size."""

    size: int | None
    """Bytes of the result as JSON (``mcp_tracing.tool.result_size``)."""
    tool_error: bool
    """``isError`` was set."""
    content: str | None = None
    """The redacted, capped result, when content was to be captured."""


def outcome_of(result: object, privacy: Privacy = DEFAULT_PRIVACY, capture: bool = False) -> Outcome:
    """The ``Outcome`` of ``result``; its content rendered by ``privacy`` only if ``capture``."""
    content = None
    if capture:
        dump = getattr(_unwrap(result), "model_dump", None)
        content = privacy.render(dump(mode="json", by_alias=True, exclude_none=True) if dump else _unwrap(result))
    return Outcome(result_size(result), is_tool_error(result), content)


def record_outcome(span: Span, method: str, outcome: Outcome) -> None:
    """Marks a successful response with ``outcome``: tool status, result size, ``isError`` as ``tool_error``,
    and the captured content if there is any."""
    if not span.is_recording() or method != attr.TOOLS_CALL:
        return
    outcome_attributes: dict[str, AttributeValue] = {}
    if outcome.content is not None:
        outcome_attributes[attr.GEN_AI_TOOL_CALL_RESULT] = outcome.content
    if outcome.size is not None:
        outcome_attributes[attr.TOOL_RESULT_SIZE] = outcome.size
    if outcome.tool_error:
        outcome_attributes[attr.ERROR_TYPE] = attr.ERROR_TOOL
        outcome_attributes[attr.TOOL_STATUS] = attr.STATUS_TOOL_ERROR
        span.set_status(StatusCode.ERROR, attr.ERROR_TOOL)
    else:
        outcome_attributes[attr.TOOL_STATUS] = attr.STATUS_OK
    span.set_attributes(outcome_attributes)


def record_result(
    span: Span, method: str, result: object, privacy: Privacy = DEFAULT_PRIVACY, tool: str | None = None
) -> bool:
    """Marks a successful response: tool status, result size, ``isError`` as ``tool_error``, and the result
    itself only if ``privacy`` captures content of ``tool``. Returns whether it is a tool error (``isError``)."""
    if method != attr.TOOLS_CALL:
        return False
    if not span.is_recording():
        return is_tool_error(result)
    outcome = outcome_of(result, privacy, privacy.captures(tool))
    record_outcome(span, method, outcome)
    return outcome.tool_error


REFUSALS: Final = frozenset({-32601, -32602})
"""Method not found, invalid params: how a server older than 2026-07-28 answers ``server/discover``."""


def is_refused_discover(method: str, code: object) -> bool:
    """Whether this error answers the ``server/discover`` probe of a client in auto mode: the server speaks an
    older protocol, and the client falls back to ``initialize``. A refusal, not a failure."""
    return method == attr.SERVER_DISCOVER and code in REFUSALS


def record_error_code(
    span: Span, method: str, code: object, message: object = None, privacy: Privacy = DEFAULT_PRIVACY
) -> None:
    """Marks a JSON-RPC error response. Its message, which often echoes client input, only if ``privacy``
    captures exception text. A refused ``server/discover`` (``is_refused_discover``) is marked
    ``mcp_tracing.discover.refused`` with its code, and its status stays unset."""
    code_text = bounded(str(code))  # the peer's: JSON-RPC says an integer, but nothing enforces it
    if is_refused_discover(method, code):
        span.set_attributes({attr.RPC_RESPONSE_STATUS_CODE: code_text, attr.DISCOVER_REFUSED: True})
        return
    span.set_attribute(attr.ERROR_TYPE, code_text)
    span.set_attribute(attr.RPC_RESPONSE_STATUS_CODE, code_text)
    if method == attr.TOOLS_CALL:
        span.set_attribute(attr.TOOL_STATUS, attr.STATUS_ERROR)
    if privacy.capture_exception_text and isinstance(message, str):
        span.set_status(StatusCode.ERROR, message[: privacy.max_length])
    else:
        span.set_status(StatusCode.ERROR, f"JSON-RPC error {code_text}")


def jsonrpc_code(exc: BaseException) -> int | None:
    """The JSON-RPC error code an SDK exception carries (``McpError``/``MCPError``), else ``None``."""
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    return code if isinstance(code, int) and not isinstance(code, bool) else None


INVALID_PARAMS = -32602


def _is_validation_error(exc: BaseException) -> bool:
    from pydantic import ValidationError

    return isinstance(exc, ValidationError)


def error_type(exc: BaseException) -> str:
    """``error.type`` for an exception: the JSON-RPC code it carries, else its type's name."""
    code = jsonrpc_code(exc)
    if code is None and _is_validation_error(exc):
        code = INVALID_PARAMS
    return str(code) if code is not None else type(exc).__qualname__


_LATE: Final = (attr.ERROR_TYPE, attr.RPC_RESPONSE_STATUS_CODE, attr.MCP_PROTOCOL_VERSION)
"""Metric attributes a span may only learn from the response (``initialize`` teaches the version)."""


def recorded_attributes(span: object) -> Mapping[str, object]:
    """The attributes an SDK span holds so far (empty for a span that keeps none: non-recording, API-only).
    Read only: it may be the span's own storage."""
    # The SDK keeps them in a BoundedAttributes over a plain dict. Its public view answers a missing key by
    # raising KeyError inside Mapping.get (about 1 µs each, several a call): the dict itself answers at once.
    # Private fields, so read defensively, with the public view as the fallback.
    inner: object = getattr(getattr(span, "_attributes", None), "_dict", None)
    if type(inner) is dict:
        return cast(dict[str, object], inner)
    recorded: object = getattr(span, "attributes", None)
    return cast(Mapping[str, object], recorded) if isinstance(recorded, Mapping) else {}


def operation_attributes(
    span: Span | None, known: Mapping[str, AttributeValue], error: str | None
) -> dict[str, AttributeValue]:
    """The attributes to measure an operation by: those known when it started, the few a recording span
    learnt from the response, and ``error.type`` when it failed (an unsampled span keeps nothing)."""
    attributes = dict(known)
    late = cast(Mapping[str, AttributeValue], recorded_attributes(span))
    for key in _LATE:
        value = late.get(key)
        if value is not None:
            attributes[key] = value
    if error is not None:
        attributes.setdefault(attr.ERROR_TYPE, error)
    return attributes


def record_exception(span: Span, method: str, exc: BaseException, privacy: Privacy = DEFAULT_PRIVACY) -> None:
    """Marks a span ended by an exception: JSON-RPC code when it carries one, else the exception type.

    By default only the type or code is recorded, never ``str(exc)``: exception text routinely carries
    arguments and secrets. ``Privacy(capture_exception_text=True)`` adds it.
    """
    code = jsonrpc_code(exc)
    if code is None and _is_validation_error(exc):
        code = INVALID_PARAMS  # what the SDK puts on the wire; pydantic's text carries client input
    if code is not None:
        record_error_code(span, method, code, getattr(getattr(exc, "error", None), "message", None), privacy)
        return
    type_name = type(exc).__qualname__
    span.set_attribute(attr.ERROR_TYPE, type_name)
    if method == attr.TOOLS_CALL:
        span.set_attribute(attr.TOOL_STATUS, attr.STATUS_ERROR)
    event: dict[str, AttributeValue] = {attr.EXCEPTION_TYPE: f"{type(exc).__module__}.{type_name}"}
    if privacy.capture_exception_text:
        text = str(exc)[: privacy.max_length]
        event[attr.EXCEPTION_MESSAGE] = text
        span.add_event("exception", event)
        span.set_status(StatusCode.ERROR, f"{type_name}: {text}")
    else:
        span.add_event("exception", event)
        span.set_status(StatusCode.ERROR, type_name)

"""What mcp_tracing records about tool arguments: a keyed hash, never the arguments.

The lesson's ``args_hash`` lets a reader see "the same call again" (runaway loops, N+1) without the
arguments. A plain SHA-256 of low-entropy arguments (a user id, a yes/no flag) is recovered by hashing
guesses, so the hash is an HMAC-SHA256 keyed with a secret that never appears in spans:

1. ``MCP_TRACING_HASH_KEY`` when set (any string; share it between hosts whose hashes must match);
2. otherwise a random key generated once per installation and stored with mode 0600 in
   ``$MCP_TRACING_HASH_KEY_FILE``, else ``$XDG_DATA_HOME/mcp-tracing/hash.key`` (``~/.local/share/...``);
3. otherwise (read-only home) a random key for this process, so hashes still match within the process.

Spawned stdio servers receive ``MCP_TRACING_HASH_KEY`` when it is set (``mcp_tracing.stdio`` forwards
``MCP_TRACING_*``), else ``MCP_TRACING_HASH_KEY_FILE`` set to the key file their spawner resolved, so they read
the same file whatever their own ``HOME`` or ``XDG_DATA_HOME``, and client and server spans of one call carry
the same hash.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final, cast

from mcp_tracing._core import settings
from mcp_tracing._core.paths import absolute, data_dir

__all__ = [
    "CAPTURE_CONTENT_ENV",
    "CAPTURE_EXCEPTION_TEXT_ENV",
    "DEFAULT_REDACT_KEYS",
    "HASH_KEY_ENV",
    "HASH_KEY_FILE_ENV",
    "KEY_BYTES",
    "MIN_KEY_BYTES",
    "Privacy",
    "REDACTED",
    "args_hash",
    "hash_key",
    "key_file",
]

_logger = logging.getLogger(__name__)

HASH_KEY_ENV = "MCP_TRACING_HASH_KEY"


HASH_KEY_FILE_ENV = "MCP_TRACING_HASH_KEY_FILE"


def key_file(environ: Mapping[str, str] | None = None) -> Path:
    """The per-installation key file: ``$MCP_TRACING_HASH_KEY_FILE``, else ``hash.key`` in mcp_tracing's data
    folder (``$XDG_DATA_HOME/mcp-tracing``), as an absolute path."""
    env = os.environ if environ is None else environ
    configured = env.get(HASH_KEY_FILE_ENV)
    return absolute(configured) if configured else data_dir(env) / "hash.key"


KEY_BYTES: Final = 32
"""Length of a key mcp_tracing creates; a key file shorter than ``MIN_KEY_BYTES`` is replaced."""
MIN_KEY_BYTES: Final = 16


@lru_cache(maxsize=4)
def _installation_key(path: Path) -> bytes:
    try:
        existing = path.read_bytes()
    except FileNotFoundError:
        return _create_key(path)
    except OSError:
        _logger.warning("mcp_tracing cannot read the hash key %s; this process hashes with a key of its own", path)
        return secrets.token_bytes(KEY_BYTES)
    if len(existing) >= MIN_KEY_BYTES:
        return existing
    _logger.warning(
        "mcp_tracing: the hash key %s is %s; replacing it with a new key",
        path,
        "empty" if not existing else "too short",
    )
    return _create_key(path, replace=True)


def _create_key(path: Path, *, replace: bool = False) -> bytes:
    """A new key, written whole to a temporary file and then linked into place: a process never reads a key file
    another is still writing, and of processes racing on a fresh installation one key wins and all read it."""
    key = secrets.token_bytes(KEY_BYTES)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(key)
                file.flush()
                os.fsync(file.fileno())
            if replace:
                os.replace(temporary, path)
            else:
                _link(temporary, path, key)
        finally:
            if temporary.exists():
                temporary.unlink()
        return key if not replace else path.read_bytes()
    except FileExistsError:
        return _installation_key.__wrapped__(path)  # another process won the race: its key, whole
    except OSError:
        _logger.warning("mcp_tracing cannot write the hash key %s; this process hashes with a key of its own", path)
        return key


def _link(temporary: Path, path: Path, key: bytes) -> None:
    try:
        os.link(temporary, path)  # fails if another process's key is there already
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: create it exclusively, as well as it allows
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(key)


def hash_key() -> bytes:
    """The key ``args_hash`` uses: ``MCP_TRACING_HASH_KEY`` if set, else this installation's key file (created
    on first use). Looked up in the environment at each call, cached per key file location."""
    configured = os.environ.get(HASH_KEY_ENV)
    if configured:
        return configured.encode()
    # Looked up per call (a test or an application may point XDG_DATA_HOME elsewhere), cached per location.
    environ = os.environ
    return _key_at(environ.get(HASH_KEY_FILE_ENV), environ.get("XDG_DATA_HOME"), environ.get("HOME"))


@lru_cache(maxsize=8)
def _key_at(key_file_env: str | None, xdg_data_home: str | None, home: str | None) -> bytes:
    return _installation_key(key_file())


_CANONICAL: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
"""Canonical JSON for hashing, built once (``json.dumps`` with options builds an encoder per call)."""


def args_hash(arguments: object, *, key: bytes | None = None) -> str | None:
    """Returns the keyed hash of tool arguments, or ``None`` when there are none.

    The arguments are serialised as canonical JSON (sorted keys, no spaces), so the same arguments give
    the same hash in every process that shares the key, whatever the key order on the wire.

    Args:
        arguments: the ``arguments`` of a ``tools/call`` (any JSON-compatible value).
        key: the HMAC key; ``hash_key()`` (the environment's, looked up now) when omitted. A tracer resolves it
            once per session, since the look-up costs a third of the hash.

    Returns:
        32 hex characters (the first 128 bits of HMAC-SHA256), or ``None`` for absent arguments.
    """
    if arguments is None:
        return None
    try:
        canonical = _CANONICAL.encode(arguments)
    except (TypeError, ValueError):  # circular or unsortable: still hash something stable per value
        canonical = repr(arguments)
    data = canonical.encode("utf-8", "surrogatepass")
    # One-shot C HMAC (no HMAC object): the first 128 bits, as hex.
    return hmac.digest(key if key is not None else hash_key(), data, "sha256")[:16].hex()


REDACTED: Final = "[REDACTED]"
DEFAULT_REDACT_KEYS: Final = (
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "auth",
    "api_key",
    "apikey",
    "api-key",
    "cookie",
    "session",
    "credential",
    "private_key",
    "pwd",
    "passphrase",
    "access_key",
    "secret_key",
    "signature",
)
"""Key fragments whose values are replaced by ``[REDACTED]`` in captured content. Keys and fragments are
compared without case and without ``_``, ``-``, ``.`` or spaces (``privateKey``, ``private-key`` and
``PRIVATE_KEY`` all match ``private_key``; ``aws_access_key_id`` matches ``access_key``)."""

_SEPARATORS: Final = str.maketrans("", "", "_-. ")
_DSN_PASSWORD: Final = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)([^@\s/]+)(@)")
"""``scheme://user:password@host``: the password of a connection string inside any captured text."""
_HEADER_NAME_KEYS: Final = ("name", "key", "header")

CAPTURE_CONTENT_ENV: Final = "MCP_TRACING_CAPTURE_CONTENT"
CAPTURE_EXCEPTION_TEXT_ENV: Final = "MCP_TRACING_CAPTURE_EXCEPTION_TEXT"


@dataclass(frozen=True)
class Privacy:
    """What may go into spans beyond names, ids, sizes and the keyed arguments hash. All off by default.

    Args:
        capture_content: record tool arguments and results in the conventions' opt-in attributes
            ``gen_ai.tool.call.arguments`` and ``gen_ai.tool.call.result`` (JSON), redacted and capped.
            Default: ``$MCP_TRACING_CAPTURE_CONTENT``.
        redact_keys: key fragments whose values are replaced by ``[REDACTED]``, at any depth, JSON inside
            text blocks included. Key-based redaction cannot see a secret inside free text (a sentence that
            echoes a password): capture content only for tools whose outputs you know.
        allow_tools: when given, only these tools' content is captured.
        deny_tools: these tools' content is never captured.
        max_length: captured JSON longer than this is cut, and ends with ``...[truncated]``.
        capture_exception_text: record exception messages and JSON-RPC error messages in span status and
            events. By default only the type or the code is. Default: ``$MCP_TRACING_CAPTURE_EXCEPTION_TEXT``.
    """

    capture_content: bool = False
    redact_keys: tuple[str, ...] = DEFAULT_REDACT_KEYS
    allow_tools: frozenset[str] | None = None
    deny_tools: frozenset[str] = frozenset()
    max_length: int = 4096
    capture_exception_text: bool = False

    @classmethod
    def from_env(cls) -> Privacy:
        """The defaults, with the two switches read from the environment."""
        return cls(
            capture_content=settings.flag(CAPTURE_CONTENT_ENV),
            capture_exception_text=settings.flag(CAPTURE_EXCEPTION_TEXT_ENV),
        )

    def captures(self, tool: str | None) -> bool:
        """Whether content of ``tool`` is captured."""
        if not self.capture_content or tool is None or tool in self.deny_tools:
            return False
        return self.allow_tools is None or tool in self.allow_tools

    def redact(self, value: object) -> object:
        """``value`` with every mapping entry whose key contains a ``redact_keys`` fragment replaced."""
        if isinstance(value, Mapping):
            entries = cast(Mapping[object, object], value)
            # A name/value pair ({"name": "Authorization", "value": "..."}): the value is hidden by the name.
            named = any(
                isinstance(entries.get(k), str) and self._hidden(str(entries.get(k))) for k in _HEADER_NAME_KEYS
            )
            out: dict[str, object] = {}
            for key, item in entries.items():
                name = str(key)
                hidden = self._hidden(name) or (named and name.lower() == "value")
                out[name] = REDACTED if hidden else self.redact(item)
            return out
        if isinstance(value, list | tuple):
            return [self.redact(item) for item in cast(Sequence[object], value)]
        if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
            # Tool results often carry JSON inside a text block: redact inside it too.
            try:
                parsed: object = json.loads(value)
            except ValueError:
                return _DSN_PASSWORD.sub(rf"\1{REDACTED}\3", value)
            return json.dumps(self.redact(parsed), ensure_ascii=False)
        if isinstance(value, str) and "://" in value:
            return _DSN_PASSWORD.sub(rf"\1{REDACTED}\3", value)
        return value

    @functools.cached_property
    def _fragments(self) -> tuple[str, ...]:
        # Normalized once per Privacy, not once per key of every captured value.
        return tuple(fragment.lower().translate(_SEPARATORS) for fragment in self.redact_keys)

    def _hidden(self, key: str) -> bool:
        normal = key.lower().translate(_SEPARATORS)
        return any(fragment in normal for fragment in self._fragments)

    def render(self, value: object) -> str:
        """Redacted, capped JSON of ``value``."""
        text = json.dumps(self.redact(value), ensure_ascii=False, default=str, separators=(",", ":"))
        if len(text) > self.max_length:
            return text[: self.max_length] + "...[truncated]"
        return text

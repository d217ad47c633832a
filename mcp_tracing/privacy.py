"""What mcp_tracing records about tool arguments: a keyed hash, never the arguments.

The lesson's ``args_hash`` lets a reader see "the same call again" (runaway loops, N+1) without the
arguments. A plain SHA-256 of low-entropy arguments (a user id, a yes/no flag) is recovered by hashing
guesses, so the hash is an HMAC-SHA256 keyed with a secret that never appears in spans:

1. ``MCP_TRACING_HASH_KEY`` when set (any string; share it between hosts whose hashes must match);
2. otherwise a random key generated once per installation and stored with mode 0600 in
   ``$XDG_DATA_HOME/mcp-tracing/hash.key`` (``~/.local/share/...``);
3. otherwise (read-only home) a random key for this process, so hashes still match within the process.

Spawned stdio servers receive ``MCP_TRACING_HASH_KEY`` when it is set (``mcp_tracing.stdio`` forwards
``MCP_TRACING_*``); with the per-installation key they read the same file, so client and server spans of
one call carry the same hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
from functools import lru_cache
from pathlib import Path

__all__ = ["HASH_KEY_ENV", "args_hash"]

_logger = logging.getLogger(__name__)

HASH_KEY_ENV = "MCP_TRACING_HASH_KEY"


def _data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "mcp-tracing"


@lru_cache(maxsize=4)
def _installation_key(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    except OSError:
        _logger.debug("cannot read %s; using a per-process hash key", path, exc_info=True)
        return secrets.token_bytes(32)
    key = secrets.token_bytes(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(key)
    except FileExistsError:
        return path.read_bytes()  # another process won the race: use its key
    except OSError:
        _logger.debug("cannot write %s; using a per-process hash key", path, exc_info=True)
    return key


def _key() -> bytes:
    configured = os.environ.get(HASH_KEY_ENV)
    if configured:
        return configured.encode()
    return _installation_key(_data_dir() / "hash.key")


def args_hash(arguments: object) -> str | None:
    """Returns the keyed hash of tool arguments, or ``None`` when there are none.

    The arguments are serialised as canonical JSON (sorted keys, no spaces), so the same arguments give
    the same hash in every process that shares the key, whatever the key order on the wire.

    Args:
        arguments: the ``arguments`` of a ``tools/call`` (any JSON-compatible value).

    Returns:
        32 hex characters (the first 128 bits of HMAC-SHA256), or ``None`` for absent arguments.
    """
    if arguments is None:
        return None
    try:
        canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    except (TypeError, ValueError):  # circular or unsortable: still hash something stable per value
        canonical = repr(arguments)
    return hmac.new(_key(), canonical.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]

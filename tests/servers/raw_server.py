"""A hand-written newline-delimited JSON-RPC "server" for byte-level proxy tests (no SDK, no tracing).

Per request: a ``notifications/message`` first, then the response. Methods: ``big`` (a 1 MB result),
``unicode`` (non-ASCII text, sent as raw UTF-8), ``fail`` (a JSON-RPC error), ``tools/call`` (an ``isError``
result), ``crash`` (exits with status 3, unanswered), ``die`` (kills itself with SIGTERM, unanswered);
anything else echoes its params. A batch gets a batch. Exits 0 at EOF.
"""

from __future__ import annotations

import json
import os
import signal
import sys


def answer(message: dict[str, object]) -> dict[str, object] | None:
    method, request_id = message.get("method"), message.get("id")
    if request_id is None:
        return None
    if method == "crash":
        sys.stdout.flush()
        os._exit(3)
    if method == "die":
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGTERM)
    if method == "fail":
        return {"jsonrpc": "2.0", "id": request_id, "error": {"code": -32602, "message": "bad params: s3cr3t"}}
    if method == "big":
        return {"jsonrpc": "2.0", "id": request_id, "result": {"data": "x" * 1_000_000}}
    if method == "unicode":
        return {"jsonrpc": "2.0", "id": request_id, "result": {"text": "héllo ✓ 🚀 日本"}}
    if method == "tools/call":
        return {"jsonrpc": "2.0", "id": request_id, "result": {"content": [], "isError": True}}
    return {"jsonrpc": "2.0", "id": request_id, "result": {"echo": message.get("params")}}


def main() -> None:
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        data = json.loads(line)
        batch = data if isinstance(data, list) else [data]
        note = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "hi"}}
        out.write(json.dumps(note).encode() + b"\n")
        replies = [r for r in (answer(m) for m in batch) if r is not None]
        if replies:
            reply = replies if isinstance(data, list) else replies[0]
            out.write(json.dumps(reply, ensure_ascii=False).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    main()

"""The arguments hash: keyed, canonical, never the arguments themselves."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest

from mcp_tracing import privacy


def test_same_arguments_same_hash_whatever_the_key_order() -> None:
    assert privacy.args_hash({"a": 1, "b": [1, 2]}) == privacy.args_hash({"b": [1, 2], "a": 1})
    assert privacy.args_hash({"a": 1}) != privacy.args_hash({"a": 2})
    assert privacy.args_hash(None) is None


def test_the_hash_is_keyed_so_guessing_low_entropy_arguments_does_not_work(monkeypatch: pytest.MonkeyPatch) -> None:
    arguments = {"user_id": 42}
    plain = hashlib.sha256(json.dumps(arguments, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    first = privacy.args_hash(arguments)
    monkeypatch.setenv(privacy.HASH_KEY_ENV, "another-key")
    second = privacy.args_hash(arguments)
    assert first is not None and second is not None and len(first) == 32
    assert first != second and not plain.startswith(first) and not plain.startswith(second)


def test_without_a_configured_key_one_is_made_once_per_installation_with_mode_0600(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(privacy.HASH_KEY_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    privacy._installation_key.cache_clear()
    first = privacy.args_hash({"x": 1})
    key_file = tmp_path / "data" / "mcp-tracing" / "hash.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_bytes()) == 32
    privacy._installation_key.cache_clear()  # a new process reads the same file
    assert privacy.args_hash({"x": 1}) == first


def test_an_unwritable_data_directory_falls_back_to_a_per_process_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(privacy.HASH_KEY_ENV)
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker))
    privacy._installation_key.cache_clear()
    assert privacy.args_hash({"x": 1}) == privacy.args_hash({"x": 1})


def test_unserialisable_arguments_still_hash() -> None:
    loop: dict[str, object] = {}
    loop["self"] = loop
    assert privacy.args_hash(loop) is not None

"""One way to read every ``MCP_TRACING_*`` setting: the same spellings, a bad value ignored with one warning."""

from __future__ import annotations

import logging

import pytest

from mcp_tracing._core import settings

pytestmark = pytest.mark.sdk_independent


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "_warned", set())


@pytest.mark.parametrize(
    ("raw", "default", "expected"),
    [
        *[(raw, False, True) for raw in ("1", "true", "TRUE", " yes ", "on")],
        *[(raw, True, False) for raw in ("0", "false", "No", "off")],
        ("", True, True),
        ("", False, False),
        ("maybe", True, True),
        ("maybe", False, False),
    ],
)
def test_a_flag_takes_the_usual_spellings_and_falls_back_to_its_default(
    monkeypatch: pytest.MonkeyPatch, raw: str, default: bool, expected: bool
) -> None:
    monkeypatch.setenv("MCP_TRACING_TEST_FLAG", raw)
    assert settings.flag("MCP_TRACING_TEST_FLAG", default=default) is expected


def test_an_unset_flag_is_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCP_TRACING_TEST_FLAG", raising=False)
    assert settings.flag("MCP_TRACING_TEST_FLAG") is False
    assert settings.flag("MCP_TRACING_TEST_FLAG", default=True) is True


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("2.5", 2.5), (" 7 ", 7.0), ("", 5.0), ("soon", 5.0), ("-1", 5.0), ("0", 5.0), ("nan", 5.0), ("inf", 5.0)],
)
def test_a_number_must_parse_be_finite_and_valid(monkeypatch: pytest.MonkeyPatch, raw: str, expected: float) -> None:
    monkeypatch.setenv("MCP_TRACING_TEST_NUMBER", raw)
    assert settings.number("MCP_TRACING_TEST_NUMBER", 5.0, parse=float) == expected


def test_a_bad_value_is_warned_about_once_per_variable_and_value(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mcp_tracing"):
        for raw in ("soon", "soon", "later", "soon"):
            monkeypatch.setenv("MCP_TRACING_TEST_NUMBER", raw)
            settings.number("MCP_TRACING_TEST_NUMBER", 5, parse=int, valid=lambda n: n >= 0, expected="a count")
        monkeypatch.setenv("MCP_TRACING_TEST_FLAG", "perhaps")
        settings.flag("MCP_TRACING_TEST_FLAG")
        settings.flag("MCP_TRACING_TEST_FLAG")
    assert [r.getMessage() for r in caplog.records] == [
        "ignoring MCP_TRACING_TEST_NUMBER='soon': not a count; using 5",
        "ignoring MCP_TRACING_TEST_NUMBER='later': not a count; using 5",
        "ignoring MCP_TRACING_TEST_FLAG='perhaps': not one of 1/true/yes/on or 0/false/no/off",
    ]


def test_every_switch_of_the_package_reads_through_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The package's switches accept the same spellings (``on``/``off`` included) wherever they are read."""
    from mcp_tracing._sdk.spawn import spawns_carry_telemetry
    from mcp_tracing.privacy import Privacy
    from mcp_tracing.sampling import LIST_CALLS, MethodFilter

    monkeypatch.setenv("MCP_TRACING_CAPTURE_CONTENT", "on")
    monkeypatch.setenv("MCP_TRACING_CAPTURE_EXCEPTION_TEXT", "off")
    assert Privacy.from_env() == Privacy(capture_content=True, capture_exception_text=False)
    monkeypatch.setenv("MCP_TRACING_SPAWN_ENVIRONMENT", "no")
    assert spawns_carry_telemetry() is False
    monkeypatch.setenv("MCP_TRACING_SPAWN_ENVIRONMENT", "")
    assert spawns_carry_telemetry() is True
    monkeypatch.setenv("MCP_TRACING_DROP_LIST_CALLS", "on")
    assert not any(MethodFilter.resolve().traces(method) for method in LIST_CALLS)

"""The Collector configuration in deploy/: well-formed, and wired as README describes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.sdk_independent  # the same on either SDK line: scripts/test runs it on mcp 2.x only

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def load(name: str) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((DEPLOY / name).read_text())


def test_the_gateway_routes_every_span_of_a_trace_to_one_sampler() -> None:
    config = load("collector-gateway.yaml")
    assert set(config["receivers"]["otlp"]["protocols"]) == {"http", "grpc"}
    assert config["exporters"]["loadbalancing"]["routing_key"] == "traceID"
    assert config["service"]["pipelines"]["traces"] == {
        "receivers": ["otlp"],
        "processors": ["memory_limiter"],
        "exporters": ["loadbalancing"],
    }


def test_the_sampler_keeps_the_lessons_policy_and_exports_to_jaeger_and_tempo() -> None:
    config = load("collector-sampler.yaml")
    policies = {p["name"]: p for p in config["processors"]["tail_sampling"]["policies"]}
    assert policies["errors"]["status_code"]["status_codes"] == ["ERROR"]
    assert policies["tool-errors"]["string_attribute"] == {"key": "error.type", "values": ["tool_error"]}
    assert policies["baseline"]["probabilistic"]["sampling_percentage"] == 5
    assert "threshold_ms" in policies["slow"]["latency"]
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["processors"] == ["memory_limiter", "tail_sampling", "batch"]
    assert pipeline["exporters"] == ["otlp/jaeger", "otlp/tempo"]
    assert set(pipeline["exporters"]) <= set(config["exporters"])

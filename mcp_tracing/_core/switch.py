"""The on/off state shared by everything ``McpInstrumentor`` set up, so ``uninstrument()`` reaches objects
that were patched while it was on (their patches stay, and pass every call through untouched)."""

from __future__ import annotations

from typing import Final

from opentelemetry.instrumentation.utils import is_http_instrumentation_enabled, is_instrumentation_enabled


class Switch:
    """On unless switched off; ``ALWAYS_ON`` for what the application instrumented by hand."""

    __slots__ = ("on",)

    def __init__(self, on: bool = True) -> None:
        self.on = on

    def active(self) -> bool:
        """On, and not inside OpenTelemetry's ``suppress_instrumentation()``."""
        return self.on and is_instrumentation_enabled()

    def http_active(self) -> bool:
        """On, and not inside ``suppress_instrumentation()`` or ``suppress_http_instrumentation()``."""
        return self.on and is_http_instrumentation_enabled()


ALWAYS_ON: Final = Switch()

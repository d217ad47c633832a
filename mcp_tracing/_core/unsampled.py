"""The unsampled fast path: whether a span about to start would record nothing, decided before any work.

Under a ``ParentBased`` sampler (the OTel SDK's default, and what ``OTEL_TRACES_SAMPLER=parentbased_*`` makes)
the child of an unsampled parent is dropped whatever it is: asking the sampler costs a ``start_span``, the
attributes built for it, the arguments hash and the result encoding, all for a span that records nothing.
Where this module says so, the tracers make no span at all and only carry the parent's context on: the
context that reaches the peer is the same unsampled trace either way (its span id is the parent's instead of a
non-recording child's, which no backend ever sees). Any other sampler is asked as before.
"""

from __future__ import annotations

import functools

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, StaticSampler

__all__ = ["skips"]


def skips(tracer: trace.Tracer, context: Context | None = None) -> bool:
    """Whether a span ``tracer`` would start in ``context`` (the current one when ``None``) is certain to
    record nothing: its parent is valid and unsampled, and the tracer's sampler drops every such child."""
    parent = trace.get_current_span(context).get_span_context()
    if not parent.is_valid or parent.trace_flags.sampled:
        return False
    return _drops_unsampled_children(tracer)


def _drops_unsampled_children(tracer: trace.Tracer) -> bool:
    # A ProxyTracer (the global provider, possibly not set yet) answers for the tracer it stands for.
    real: object = getattr(tracer, "_tracer", tracer) if isinstance(tracer, trace.ProxyTracer) else tracer
    return _verdict(real)


@functools.lru_cache(maxsize=64)
def _verdict(tracer: object) -> bool:
    # Per tracer, once: an SDK tracer's sampler is fixed when the tracer is made.
    if isinstance(tracer, trace.NoOpTracer):
        return True
    if not isinstance(tracer, SdkTracer):  # another SDK: its sampler is its own business
        return False
    sampler = tracer.sampler
    if isinstance(sampler, ParentBased):
        # Private fields: the SDK exposes the delegates only in get_description(). Read defensively.
        return all(
            _drops_all(getattr(sampler, name, None))
            for name in ("_remote_parent_not_sampled", "_local_parent_not_sampled")
        )
    return _drops_all(sampler)


def _drops_all(sampler: Sampler | None) -> bool:
    return isinstance(sampler, StaticSampler) and getattr(sampler, "_decision", None) is Decision.DROP

"""How a server treats the context a peer sends: the trust policies, shared by the HTTP middleware, the
server side and the client side (for what a server sends its client)."""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = ["POLICIES", "Policy", "check_policy", "stricter"]

Policy = Literal["default", "gateway", "untrusted"]
"""How a server treats inbound context:

* ``default``: the MCP server span's parent is the ``_meta`` context (else the header's), with a link to
  the HTTP span (the OpenTelemetry MCP conventions);
* ``gateway``: the parent is the server's own HTTP span, with a link to the ``_meta`` context, for a
  gateway that anchors the calls it serves in its own trace;
* ``untrusted``: every span starts a new trace, with links to what arrived; inbound baggage is ignored.
"""

POLICIES: Final[tuple[str, ...]] = get_args(Policy)


def check_policy(policy: str) -> Policy:
    """Returns ``policy`` if it is one of ``POLICIES``; raises ``ValueError`` otherwise."""
    if policy == "default" or policy == "gateway" or policy == "untrusted":
        return policy
    raise ValueError(f"policy must be one of {', '.join(POLICIES)}; got {policy!r}")


_STRICTNESS: dict[str, int] = {"default": 0, "gateway": 1, "untrusted": 2}


def stricter(first: Policy, second: Policy) -> Policy:
    """The stricter of two policies (``untrusted`` > ``gateway`` > ``default``): where the HTTP middleware and
    ``instrument_server`` were each given one, neither may loosen the other."""
    return first if _STRICTNESS[first] >= _STRICTNESS[second] else second

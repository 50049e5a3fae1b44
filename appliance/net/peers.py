"""Choosing a peer for a role, and failing over: the one peer selection of the LLM, tools and world.

The candidates are the discovery registry's trusted, healthy peers with the
role, best first (least loaded, then nearest), then the endpoints the config
names (``llm.endpoints``, ``tools.endpoints``, ``world.endpoint``) that are not
among them. A caller that saw a candidate fail tells :meth:`Selection.mark_down`:
the registry stops selecting that peer for every part until a probe finds it
well again (a configured endpoint is not in the registry: nothing to mark).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from appliance.net import text

PeerSource = Callable[[], list[Any]]
"""Returns peers best first; each has ``.url``, ``.name``, ``.id`` (and maybe ``.models``)."""
MarkDown = Callable[[str, str], None]
"""Called with a peer's id and the problem when a request to it failed."""
RegistrySource = Callable[[], Any]
"""The discovery registry (``select(role)``, ``mark_down(id, problem)``), or None; asked per
call, because discovery starts after the parts that use it."""


@dataclass(frozen=True)
class Endpoint:
    """A peer the config names by URL; discovery's peers have the same fields."""

    id: str
    name: str
    url: str
    models: tuple[str, ...] = ()


def endpoint(url: str) -> Endpoint:
    """A configured URL as a candidate; its id is the URL itself."""
    url = url.strip().rstrip("/")
    return Endpoint(id=url, name=url.split("://", 1)[-1], url=url)


class Selection:
    """The candidates for one role, best first, and the way to report one down."""

    def __init__(self, role: str, registry: RegistrySource,
                 static: Sequence[Endpoint] = ()) -> None:
        self.role = role
        self._registry = registry
        self._static = list(static)

    def peers(self) -> list[Any]:
        """The registry's trusted healthy peers with the role, then the other endpoints."""
        registry = self._registry()
        found = list(registry.select(self.role)) if registry is not None else []
        urls = {p.url for p in found}
        return found + [e for e in self._static if e.url not in urls]

    def mark_down(self, peer_id: str, problem: str) -> None:
        """Stop selecting the peer (for every part) until a probe finds it well again."""
        registry = self._registry()
        if registry is not None:
            registry.mark_down(peer_id, text.message(problem))

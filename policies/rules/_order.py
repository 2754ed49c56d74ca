"""The order a deploy creates resources in, as the engine sees it: what each resource waits for.

A resource is created after everything in its `dependencies` (its `depends_on` and the resources its inputs
come from; a component named there stands for its children, a chart for all it renders). A child also waits
for its parent: the SDK registers it only once its parent is registered, and a component is registered
only once its own dependencies exist, so a component's `depends_on` holds back every child; a custom
parent is created before its children. Ordering is transitive: after B, which is after A, is after A.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from policies.rules._framework import Resource


class Order:
    """Answers "is this resource created after that one?" for one stack's resources."""

    def __init__(self, resources: Sequence[Resource]) -> None:
        self._by_urn: Mapping[str, Resource] = {r.urn: r for r in resources}
        self._after: dict[str, frozenset[str]] = {}

    def _direct(self, urn: str) -> list[str]:
        resource = self._by_urn.get(urn)
        if resource is None:
            return []
        direct = list(resource.dependencies)
        if resource.parent is not None:
            direct.append(resource.parent)
        return direct

    def waits_for(self, urn: str) -> frozenset[str]:
        """Every URN the resource is created after, directly or through others (memoized, iterative: a
        long chain of components must not exhaust the recursion limit)."""
        if urn in self._after:
            return self._after[urn]
        # Depth-first, post-order: a node's set is the union of its direct ones and theirs.
        stack: list[tuple[str, bool]] = [(urn, False)]
        visiting: set[str] = set()
        while stack:
            node, expanded = stack.pop()
            if node in self._after:
                continue
            if expanded:
                found: set[str] = set()
                for before in self._direct(node):
                    found.add(before)
                    found |= self._after.get(before, frozenset())
                self._after[node] = frozenset(found)
                visiting.discard(node)
                continue
            if node in visiting:
                # A cycle (the engine refuses one anyway): cut it here.
                self._after[node] = frozenset(self._direct(node))
                continue
            visiting.add(node)
            stack.append((node, True))
            stack.extend((before, False) for before in self._direct(node) if before not in self._after)
        return self._after[urn]

    def after(self, urn: str, before: str) -> bool:
        """Whether the resource urn is created after the resource before."""
        return before in self.waits_for(urn)

    def after_any(self, urn: str, candidates: Sequence[str]) -> bool:
        waits = self.waits_for(urn)
        return any(candidate in waits for candidate in candidates)

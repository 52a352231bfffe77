"""Reciprocal-rank fusion of ranked lists, with a score scaled into [0, 1]."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

RRF_K = 60

Key = TypeVar("Key", bound=Hashable)


def rrf(lists: Sequence[Sequence[Key]], k: int = RRF_K) -> list[tuple[Key, float]]:
    """Fuse ranked lists (best first) into one, best first; each score is the RRF sum divided by its maximum.

    An item ranked first in every list scores 1.0; the score only depends on ranks, never on the lists' scores.
    """
    if not lists:
        return []
    best_possible = len(lists) / (k + 1)
    totals: dict[Key, float] = {}
    for ranked in lists:
        for rank, key in enumerate(ranked, start=1):
            totals[key] = totals.get(key, 0.0) + 1.0 / (k + rank)
    fused = sorted(totals.items(), key=lambda item: item[1], reverse=True)
    return [(key, min(1.0, total / best_possible)) for key, total in fused]

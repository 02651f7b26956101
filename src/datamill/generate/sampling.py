"""Sampling plans shared by task families: even coverage before any repetition."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def spread(groups: Sequence[Sequence[T]], n: int, rng: random.Random) -> list[T]:
    """``n`` items, round-robin over ``groups`` (languages, documents…).

    Each group's items are shuffled and drawn without replacement; a group starts over
    only once all of its items were used. Empty groups are left out.
    """
    pools = []
    for group in groups:
        if group:
            items = list(group)
            rng.shuffle(items)
            pools.append(itertools.cycle(items))
    if not pools:
        return []
    return [next(pools[i % len(pools)]) for i in range(n)]

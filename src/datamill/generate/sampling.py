"""Sampling plans shared by task families: even coverage before any repetition."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def item_seed(seed: int, i: int) -> int:
    """The seed of item ``i`` of a run: distinct per item and per run seed."""
    return seed * 1_000_003 + i


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


def sample(axes: Sequence[Sequence[Any]], n: int, seed: int = 0) -> list[tuple[Any, ...]]:
    """``n`` combinations of one value per axis, without replacement until all are used.

    Every combination comes once before any comes twice; each pass is shuffled anew.
    """
    combos = list(itertools.product(*axes))
    if not combos:
        return []
    rng = random.Random(seed)
    picked: list[tuple[Any, ...]] = []
    while len(picked) < n:
        rng.shuffle(combos)
        picked.extend(combos[: n - len(picked)])
    return picked

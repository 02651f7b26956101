"""Self-BLEU of a set of texts in one linear pass, equal to sacrebleu's sentence BLEU.

Self-BLEU (Zhu et al., 2018, Texygen) scores every text as a hypothesis against all the
others as references and averages: 1 when every text is the same, near 0 when no two
share phrases. Computed directly it costs a pass over all n other texts per text, O(n²).
Here it is linear: with several references, a hypothesis n-gram's count is clipped by its
highest count in any *other* text, which is the highest count overall, or the second
highest when this text holds the highest alone. So one pass keeps the two highest counts
of every n-gram, and a second pass scores each text against them.

Scores follow sacrebleu's ``sentence_bleu`` (BLEU-4, ``exp`` smoothing, effective order,
closest reference length with ties to the shorter) on pre-tokenised text, to 1e-9.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Sequence

MAX_ORDER = 4
_LOG_ZERO = -9999999999.0  # sacrebleu's log of a zero precision


def _ngrams(tokens: Sequence[str]) -> Counter[tuple[str, ...]]:
    counts: Counter[tuple[str, ...]] = Counter()
    for n in range(1, MAX_ORDER + 1):
        counts.update(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return counts


def _closest_other_length(length: int, lengths: list[int], count: Counter[int]) -> int:
    """The reference length closest to ``length`` among the other texts (ties: shorter)."""
    if count[length] > 1:
        return length
    i = bisect.bisect_left(lengths, length)  # ``lengths`` holds each distinct length once
    below = lengths[i - 1] if i > 0 else None
    j = i + 1 if i < len(lengths) and lengths[i] == length else i
    above = lengths[j] if j < len(lengths) else None
    if below is None:
        return above  # type: ignore[return-value]
    if above is None or length - below <= above - length:
        return below
    return above


def sentence_bleu(correct: list[int], total: list[int], length: int, ref_length: int) -> float:
    """BLEU in [0, 1] from the clipped and total n-gram counts (sacrebleu's formula)."""
    if not any(correct):
        return 0.0
    bp = 1.0 if length >= ref_length else math.exp(1 - ref_length / length)
    precisions = [0.0] * MAX_ORDER
    smooth, order = 1.0, MAX_ORDER
    for n in range(MAX_ORDER):
        if total[n] == 0:
            break
        order = n + 1
        if correct[n] == 0:
            smooth *= 2
            precisions[n] = 100.0 / (smooth * total[n])
        else:
            precisions[n] = 100.0 * correct[n] / total[n]
    logs = [math.log(p) if p > 0 else _LOG_ZERO for p in precisions[:order]]
    return bp * math.exp(sum(logs) / order) / 100.0


def self_bleu(texts: Sequence[Sequence[str]]) -> float | None:
    """Mean sentence BLEU of each tokenised text against all the others; None under two."""
    if len(texts) < 2:
        return None
    counts = [_ngrams(tokens) for tokens in texts]
    top: dict[tuple[str, ...], list[int]] = {}  # n-gram -> [highest, second highest] count
    for grams in counts:
        for gram, c in grams.items():
            best = top.get(gram)
            if best is None:
                top[gram] = [c, 0]
            elif c > best[0]:
                best[1], best[0] = best[0], c
            elif c > best[1]:
                best[1] = c
    length_count = Counter(len(tokens) for tokens in texts)
    lengths = sorted(length_count)
    scores = []
    for tokens, grams in zip(texts, counts, strict=True):
        correct, total = [0] * MAX_ORDER, [0] * MAX_ORDER
        for gram, c in grams.items():
            best = top[gram]
            others = best[1] if c == best[0] else best[0]
            total[len(gram) - 1] += c
            correct[len(gram) - 1] += min(c, others)
        ref_length = _closest_other_length(len(tokens), lengths, length_count)
        scores.append(sentence_bleu(correct, total, len(tokens), ref_length))
    return sum(scores) / len(scores)

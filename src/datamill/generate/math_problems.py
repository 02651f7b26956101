"""Word problems built by a program, so their answers are computed, not trusted.

Each kind is a template over numbers a seeded generator picks so that the answer comes
out whole or in cents; the answer is computed exactly (fractions) from those numbers.
The same kind and seed always give the same problem.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

Kind = Literal[
    "multi_step", "percentage", "rate", "unit_conversion", "ratio", "average", "interest"
]

NAMES = ["Amara", "Ben", "Chen", "Dana", "Elif", "Farid", "Grace", "Hugo", "Ines", "Jonas"]
NAMES += ["Kofi", "Lena", "Mateo", "Noor", "Olga", "Priya", "Quinn", "Rosa", "Sami", "Tomás"]
GOODS = [("notebook", "notebooks"), ("pen", "pens"), ("apple", "apples"), ("mug", "mugs")]
GOODS += [("ticket", "tickets"), ("candle", "candles"), ("plant", "plants"), ("towel", "towels")]
UNITS = [  # (small unit, small per big, what happens every day, in big units)
    ("metres", 1000, "{name} runs {x} kilometres"),
    ("grams", 1000, "A bakery uses {x} kilograms of flour"),
    ("millilitres", 1000, "{name} drinks {x} litres of water"),
    ("minutes", 60, "{name} practises the piano for {x} hours"),
    ("centimetres", 100, "A workshop cuts {x} metres of ribbon"),
]


@dataclass(frozen=True)
class Problem:
    kind: Kind
    question: str
    answer: Fraction
    seed: int

    @property
    def answer_text(self) -> str:
        """The answer as a decimal, without trailing zeros ("12.5", "18")."""
        if self.answer.denominator == 1:
            return str(self.answer.numerator)
        return f"{float(self.answer):.6f}".rstrip("0").rstrip(".")


def _money(value: Fraction) -> str:
    return f"${value.numerator}" if value.denominator == 1 else f"${float(value):.2f}"


def _decimal(value: Fraction) -> str:
    return f"{float(value):g}"


def multi_step(rng: random.Random) -> tuple[str, Fraction]:
    name = rng.choice(NAMES)
    (_, many), (_, many2) = rng.sample(GOODS, 2)
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    p, q = Fraction(rng.randint(2, 30), 2), Fraction(rng.randint(1, 12))
    total = a * p + b * q
    bill = next(x for x in (20, 50, 100, 200, 500) if x > total)
    question = (
        f"{name} buys {a} {many} at {_money(p)} each and {b} {many2} at {_money(q)} each, "
        f"and pays with a ${bill} bill. How much change does {name} get, in dollars?"
    )
    return question, bill - total


def percentage(rng: random.Random) -> tuple[str, Fraction]:
    one, many = rng.choice(GOODS)
    price, off = Fraction(rng.randint(4, 60) * 5), rng.choice([10, 15, 20, 25, 30, 40, 60])
    if rng.random() < 0.5:
        question = (
            f"A {one} costs {_money(price)}. It is on sale at {off}% off. "
            "What is the sale price, in dollars?"
        )
        return question, price * (100 - off) / 100
    sold = rng.randint(1, 10) * 40  # so that both steps come out whole
    question = (
        f"A shop had {sold} {many}. It sold {off}% of them on Monday and half of the rest "
        "on Tuesday. How many were left after Tuesday?"
    )
    return question, (sold - sold * Fraction(off, 100)) / 2


def rate(rng: random.Random) -> tuple[str, Fraction]:
    v, w = rng.randint(4, 12) * 10, rng.randint(3, 9) * 10
    t, u = Fraction(rng.randint(3, 8), 2), rng.randint(2, 4)  # never "1 hours"
    question = (
        f"A bus drives at {v} km/h for {_decimal(t)} hours, then at {w} km/h for {u} hours. "
        "How many kilometres does it drive in total?"
    )
    return question, v * t + w * u


def unit_conversion(rng: random.Random) -> tuple[str, Fraction]:
    small, factor, daily = rng.choice(UNITS)
    amount, days = Fraction(rng.choice([3, *range(5, 19)]), 4), rng.randint(3, 12)
    what = daily.format(name=rng.choice(NAMES), x=_decimal(amount))
    question = f"{what} every day for {days} days. How many {small} is that in total?"
    return question, amount * days * factor


def ratio(rng: random.Random) -> tuple[str, Fraction]:
    first, second = rng.sample(NAMES, 2)
    a, b = rng.sample(range(1, 8), 2)
    total = (a + b) * rng.randint(3, 40) * 5
    question = (
        f"{first} and {second} share ${total} in the ratio {a}:{b}. "
        f"How many dollars does {second} get?"
    )
    return question, Fraction(total * b, a + b)


def average(rng: random.Random) -> tuple[str, Fraction]:
    name = rng.choice(NAMES)
    target = rng.randint(70, 90)
    scores = [rng.randint(target - 15, min(100, target + 15)) for _ in range(4)]
    needed = 5 * target - sum(scores)
    while not 0 <= needed <= 100:
        scores = [rng.randint(target - 15, min(100, target + 15)) for _ in range(4)]
        needed = 5 * target - sum(scores)
    listed = ", ".join(map(str, scores[:3])) + f" and {scores[3]}"
    question = (
        f"{name} scored {listed} on four tests. What score does {name} need on the fifth "
        f"test to average exactly {target} over all five?"
    )
    return question, Fraction(needed)


def interest(rng: random.Random) -> tuple[str, Fraction]:
    name = rng.choice(NAMES)
    principal, percent, years = rng.randint(4, 80) * 250, rng.randint(2, 9), rng.randint(2, 6)
    question = (
        f"{name} deposits ${principal} at {percent}% simple interest per year. How many "
        f"dollars are in the account after {years} years?"
    )
    return question, principal * (1 + Fraction(percent * years, 100))


KINDS: dict[Kind, Callable[[random.Random], tuple[str, Fraction]]] = {
    "multi_step": multi_step,
    "percentage": percentage,
    "rate": rate,
    "unit_conversion": unit_conversion,
    "ratio": ratio,
    "average": average,
    "interest": interest,
}


def make_problem(kind: Kind, seed: int) -> Problem:
    question, answer = KINDS[kind](random.Random(f"{kind}:{seed}"))
    return Problem(kind, question, Fraction(answer), seed)

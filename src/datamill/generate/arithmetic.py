"""Check the arithmetic a solution states, without trusting it and without ``eval``.

A solution states computations in two ways: GSM8K-style calculator annotations
(``<<48/2=24>>``) and equalities in the text (``16 - 3 - 4 = 9``, ``9 × 2 = $18``).
Each is parsed with :mod:`ast` and evaluated over exact fractions by a whitelist of
number literals, ``+ - * / // % **`` (small exponents only) and parentheses; anything
else is not a computation. A stated result must be exact, or the value rounded or cut to
the decimals it is written with: ``10/3 = 3.33`` holds, ``10/3 = 3.4`` does not.
"""

from __future__ import annotations

import ast
import itertools
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction

from pydantic import JsonValue

MAX_CHARS = 200  # a longer "expression" is not a calculation a solution states
MAX_EXPONENT = 64
MAX_BITS = 1400  # about 420 digits: numbers in a word problem stay far below

_BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
}


class NotArithmetic(ValueError):
    """The text is not a plain arithmetic expression over numbers."""


def evaluate(expression: str) -> Fraction:
    """The exact value of an arithmetic expression, or :class:`NotArithmetic`."""
    if len(expression) > MAX_CHARS:
        raise NotArithmetic("too long")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as e:
        raise NotArithmetic(str(e)) from None
    try:
        return _value(tree.body)
    except (ZeroDivisionError, RecursionError):
        raise NotArithmetic("not a number") from None


def _value(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        if not math.isfinite(node.value):
            raise NotArithmetic("not a finite number")
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _value(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow):
            if right.denominator != 1 or abs(right) > MAX_EXPONENT:
                raise NotArithmetic("only small whole exponents")
            result = left**right.numerator
        elif type(node.op) in _BINARY:
            result = _BINARY[type(node.op)](left, right)  # type: ignore[no-untyped-call]
        else:
            raise NotArithmetic(f"operator {type(node.op).__name__} is not allowed")
        if max(result.numerator.bit_length(), result.denominator.bit_length()) > MAX_BITS:
            raise NotArithmetic("number too large")
        return Fraction(result)
    raise NotArithmetic(f"{type(node).__name__} is not allowed")


def _decimals(number: str) -> int:
    number = number.strip().lstrip("+-")
    return len(number.split(".", 1)[1]) if "." in number else 0


def holds(value: Fraction, stated: str) -> bool:
    """Whether ``stated`` (a number as written) is ``value``.

    A value with more decimals than ``stated`` has may be rounded or truncated to them
    (``10/3 = 3.33``, ``2/3 = 0.66``); a whole number must be exact (``45/20 = 3`` is not).
    """
    result, decimals = evaluate(stated), _decimals(stated)
    if value == result:
        return True
    scale = 10**decimals
    if decimals == 0 or (value * scale).denominator == 1:
        return False
    rounded = Fraction(round(value * scale), scale)
    truncated = Fraction(math.trunc(value * scale), scale)
    return result in (rounded, truncated)


@dataclass(frozen=True)
class Computation:
    expression: str
    stated: str
    value: str  # the exact value, as a decimal
    holds: bool


@dataclass
class Verification:
    computations: list[Computation] = field(default_factory=list)
    final_answer: str | None = None  # as parsed, a decimal
    answer_follows: bool = False
    passed: bool = False
    reason: str = ""

    def as_details(self) -> dict[str, JsonValue]:
        return {
            "reason": self.reason,
            "computations": len(self.computations),
            "wrong": [f"{c.expression} = {c.stated} (is {c.value})" for c in self.wrong],
            "final_answer": self.final_answer,
            "answer_follows": self.answer_follows,
        }

    @property
    def wrong(self) -> list[Computation]:
        return [c for c in self.computations if not c.holds]


_ANNOTATION = re.compile(r"<<([^<>=]{1,200})=([^<>=]{1,60})>>")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_TIMES = re.compile(r"(?<=[\d)])[ \t]*[x×✕][ \t]*(?=[\d(])")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)[ \t]*%")
_MIXED = re.compile(r"(?<![\d./])(\d+)[ \t]+(\d+)/(\d+)(?![\d.])")  # 3 1/2
_SENTENCE_END = re.compile(r"[.:;,!?](?=\s|$)")
# A run of arithmetic on one line with at least one "=": numbers, operators, parentheses.
_CHAIN = re.compile(r"[\d.(][\d.+\-*/() \t]*(?:=[ \t]*[\d.+\-*/() \t]*[\d)])+")
_PERCENTAGE = re.compile(r"\((\d+(?:\.\d+)?)/100\)")  # a percentage, as normalised
_CUT = re.compile(r"(?:[-+*/)\d]|\b[x×])[ \t]*$")  # what precedes a truncated left side
_OPERATION = re.compile(r"[\d)][ \t]*[-+*/]")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[ \t]*/[ \t]*\d+(?:\.\d+)?)?")
_ANSWER = re.compile(rf"\(\d+\+\d+/\d+\)|{_NUMBER.pattern}")  # a mixed number, or a number


def normalise(text: str, percent: bool = True) -> str:
    """Numbers and operators in Python's spelling: no $ or thousands commas, ``x`` is ``*``."""
    for char, spelling in (("−", "-"), ("–", "-"), ("÷", "/"), ("·", "*"), ("$", "")):
        text = text.replace(char, spelling)
    text = _MIXED.sub(r"(\1+\2/\3)", _TIMES.sub(" * ", _THOUSANDS.sub("", text)))
    return _PERCENT.sub(r"(\1/100)", text) if percent else text


def computations(text: str) -> list[Computation]:
    """Every computation ``text`` states: annotations first, then equalities in the prose."""
    text = normalise(text)
    found = []
    for expression, stated in _ANNOTATION.findall(text):
        found.extend(_check([expression, stated]))
    prose = _SENTENCE_END.sub("\n", _ANNOTATION.sub(" ", text))
    for chain in _CHAIN.finditer(prose):
        if _CUT.search(prose, 0, chain.start()):
            continue  # "200 GB * 40% = 80": the left side starts before the words
        found.extend(_check(chain.group().split("=")))
    return found


def _check(parts: list[str]) -> list[Computation]:
    """Each step ``a = b`` of a chain ``a = b = c`` whose left side computes something."""
    checked = []
    for left, right in itertools.pairwise(parts):
        expression, stated = _tail(left), right.strip()
        if expression is None:
            continue  # "x = 5" or "5 = 2 + 3": nothing computed on the left
        try:
            value = evaluate(expression)
            if _NUMBER.fullmatch(stated):
                ok = holds(value, stated.replace(" ", ""))
            elif match := _PERCENTAGE.fullmatch(stated):  # "18 / 450 * 100 = 4%"
                ok = value in (evaluate(stated), evaluate(match.group(1)))
            else:
                ok = value == evaluate(stated)
        except NotArithmetic:
            continue
        checked.append(Computation(expression, stated, _decimal(value), ok))
    return checked


def _tail(text: str) -> str | None:
    """``text`` if it is an arithmetic operation ("16 - 3"), else None ("x", "5")."""
    text = text.strip()
    return text if _OPERATION.search(text) else None


def _decimal(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.6g}"


def parse_answer(text: str) -> Fraction | None:
    """The number a final answer gives (``$1,200``, ``12.5 km``, ``3/4``, ``#### 18``)."""
    match = _ANSWER.search(normalise(text, percent=False))
    if match is None:
        return None
    try:
        return evaluate(match.group())
    except NotArithmetic:
        return None


def close(a: Fraction, b: Fraction, tolerance: float) -> bool:
    return abs(a - b) <= Fraction(str(tolerance))


def verify(solution: str, final_answer: str, tolerance: float = 0.01) -> Verification:
    """Whether every stated computation holds and ``final_answer`` is the result of one."""
    result = Verification(computations=computations(solution))
    answer = parse_answer(final_answer)
    result.final_answer = None if answer is None else _decimal(answer)
    if answer is None:
        result.reason = "no number in the final answer"
    elif not result.computations:
        result.reason = "no computation to check"
    elif result.wrong:
        result.reason = f"{len(result.wrong)} computation(s) do not hold"
    results = [evaluate(c.stated) for c in result.computations]
    # A result stated as a percentage ("= 60%") may be answered as the number of percent.
    results += [100 * evaluate(c.stated) for c in result.computations if "/100)" in c.stated]
    result.answer_follows = answer is not None and any(close(answer, r, tolerance) for r in results)
    if not result.reason and not result.answer_follows:
        result.reason = "the final answer is not the result of any computation"
    result.passed = not result.reason
    return result

"""Personal data in a record: e-mail addresses, phone numbers, payment cards, IBANs,
national ids and IP addresses, found offline and optionally redacted.

Candidates come from patterns; numbers are then validated the way their issuers define
them, so that order numbers and dates are not taken for personal data: phone numbers
with Google's libphonenumber (``phonenumbers``), IBANs (country format and mod-97),
payment cards (Luhn, issuer prefix) and US social security numbers with ``python-stdnum``,
UK national insurance numbers by their prefix rules, IP addresses with ``ipaddress`` (only
public ones: private, loopback and documentation addresses identify nobody).

Presidio's pattern recognizers were weighed and left: they pull in spaCy, and its e-mail
recognizer asks the network for the public-suffix list. Person names need a named-entity
model: they are looked for only when ``types`` names ``person`` (``checks/names.py``, with
the ``names`` extra), after every other type, so a name inside an e-mail stays an e-mail.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache, partial

import phonenumbers
from pydantic import JsonValue
from stdnum import iban, luhn
from stdnum.us import ssn

from datamill.checks import names
from datamill.checks.base import Part, RecordCheck
from datamill.checks.registry import register
from datamill.records import CheckResult, Record

_EMAIL = re.compile(r"(?<![\w.+'-])[\w.+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_CARD_ISSUER = re.compile(r"4|5[1-5]|2[2-7]|3[47]|3[068]|35|6(?:011|5|4[4-9]|2)")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_SSN = re.compile(r"(?<![\d-])\d{3}([- ])\d{2}\1\d{4}(?![\d-])")
_NINO = re.compile(
    r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?(?:\d{2} ?){3}[A-D]\b"
)
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d \t().\-\u00a0]{5,18}\d(?!\w)")

PLACEHOLDERS = {
    "email": "<EMAIL>",
    "phone": "<PHONE>",
    "credit_card": "<CREDIT_CARD>",
    "iban": "<IBAN>",
    "us_ssn": "<US_SSN>",
    "uk_nino": "<UK_NINO>",
    "ip_address": "<IP_ADDRESS>",
    "person": "<PERSON>",
}
# Looked for unless told otherwise; person names need the optional model.
DEFAULT_TYPES = tuple(t for t in PLACEHOLDERS if t != "person")


@dataclass(frozen=True)
class Finding:
    type: str
    start: int
    end: int


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _card(value: str) -> bool:
    digits = _digits(value)
    return bool(_CARD_ISSUER.match(digits)) and luhn.is_valid(digits)


def _public_ip(value: str) -> bool:
    try:
        return ipaddress.ip_address(value).is_global
    except ValueError:
        return False


@lru_cache(maxsize=65536)
def _phone(value: str, regions: tuple[str, ...]) -> bool:
    """A valid number of one of ``regions`` (or international), written as its region writes
    numbers: libphonenumber's matcher also wants the trunk prefix where one is due. Cached:
    validating is slow, and long texts repeat their numbers."""
    if not 7 <= len(_digits(value)) <= 15 or ("." in value and " " in value):
        return False  # dots and spaces together are a row of decimals
    for region in regions:
        try:
            if not phonenumbers.is_valid_number(phonenumbers.parse(value, region)):
                continue  # the quick test first; the matcher is slower
        except phonenumbers.NumberParseException:
            continue
        matches = phonenumbers.PhoneNumberMatcher(value, region, phonenumbers.Leniency.VALID)
        if any(m.start == 0 and m.end == len(value) for m in matches):
            return True
    return False


Validator = Callable[[str], bool]
# In order of precedence: a span claimed by an earlier type is not looked at again.
_DETECTORS: list[tuple[str, re.Pattern[str], Validator | None]] = [
    ("email", _EMAIL, None),
    ("iban", _IBAN, iban.is_valid),
    ("credit_card", _CARD, _card),
    ("us_ssn", _SSN, ssn.is_valid),
    ("uk_nino", _NINO, None),
    ("ip_address", _IPV4, _public_ip),
    ("ip_address", _IPV6, _public_ip),
]


def find_pii(
    text: str, types: Iterable[str] = DEFAULT_TYPES, regions: Iterable[str] = ("US", "GB")
) -> list[Finding]:
    """The personal data in ``text``, in order, without overlaps."""
    wanted, where = set(types), tuple(region.upper() for region in regions)
    phone: Validator = partial(_phone, regions=where)
    found: list[Finding] = []
    taken = bytearray(len(text))
    for kind, pattern, valid in [*_DETECTORS, ("phone", _PHONE, phone)]:
        if kind not in wanted:
            continue
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(taken[start:end]) or (valid is not None and not valid(match.group())):
                continue
            taken[start:end] = b"\x01" * (end - start)
            found.append(Finding(kind, start, end))
    if "person" in wanted:
        found += [Finding("person", s, e) for s, e in names.find_names(text) if not any(taken[s:e])]
    return sorted(found, key=lambda f: f.start)


def mask(value: str) -> str:
    """Enough of a value to find it again by eye, not enough to use it."""
    keep = 2 if len(value) > 8 else 0
    return "".join(
        c if not c.isalnum() or i >= len(value) - keep else "*" for i, c in enumerate(value)
    )


def redact_text(text: str, findings: Iterable[Finding]) -> str:
    out, last = [], 0
    for f in findings:
        out += [text[last : f.start], PLACEHOLDERS[f.type]]
        last = f.end
    return "".join([*out, text[last:]])


def _parts(record: Record, on: Part) -> Iterator[tuple[str, int, str]]:
    """(``message`` or ``candidate``, index, text) for the texts of ``on``."""
    last = len(record.messages) - 1
    for i, message in enumerate(record.messages):
        is_response = i == last and message.role == "assistant"
        if message.content and (on == "conversation" or (on == "response") == is_response):
            yield "message", i, message.content
    if on != "prompt":
        for i, candidate in enumerate(record.candidates):
            yield "candidate", i, candidate.content


def redact(
    record: Record,
    types: Iterable[str] = DEFAULT_TYPES,
    regions: Iterable[str] = ("US", "GB"),
) -> Record:
    """A copy of ``record`` with personal data replaced by typed placeholders (``<EMAIL>``),
    in every message and candidate. It keeps its id: it is the same example."""
    types, regions = tuple(types), tuple(regions)

    def clean(text: str) -> str:
        return redact_text(text, find_pii(text, types, regions))

    messages = [
        m.model_copy(update={"content": clean(m.content)}) if m.content else m
        for m in record.messages
    ]
    candidates = [c.model_copy(update={"content": clean(c.content)}) for c in record.candidates]
    return record.model_copy(update={"messages": messages, "candidates": candidates})


@register
class Pii(RecordCheck):
    """Fails a record with personal data; the score is the number of findings."""

    name = "pii"

    def __init__(
        self,
        types: Iterable[str] = DEFAULT_TYPES,
        regions: Iterable[str] = ("US", "GB"),
        on: Part = "conversation",
        redact: bool = False,
    ) -> None:
        self.types, self.regions = tuple(types), tuple(regions)
        unknown = sorted(set(self.types) - set(PLACEHOLDERS))
        if unknown:
            raise ValueError(f"no PII type '{unknown[0]}'; known: {', '.join(PLACEHOLDERS)}")
        if "person" in self.types:
            names.ensure_available()
        self.on, self.redact = on, redact

    def check(self, record: Record) -> CheckResult:
        findings: list[JsonValue] = []
        redacted: list[JsonValue] = []
        for kind, index, text in _parts(record, self.on):
            found = find_pii(text, self.types, self.regions)
            findings += [
                {
                    "type": f.type,
                    kind: index,
                    "start": f.start,
                    "end": f.end,
                    "masked": mask(text[f.start : f.end]),
                }
                for f in found
            ]
            if self.redact and found:
                redacted.append({kind: index, "content": redact_text(text, found)})
        details: dict[str, JsonValue] = {"findings": findings}
        if self.redact:
            details["redacted"] = redacted
        return CheckResult(score=float(len(findings)), passed=not findings, details=details)

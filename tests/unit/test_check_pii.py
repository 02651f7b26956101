"""Personal data: detection with validation, masking, redaction, options."""

from __future__ import annotations

import pytest

from datamill.checks import make_check
from datamill.checks.pii import Pii, find_pii, mask, redact
from datamill.errors import DatamillError
from datamill.records import Candidate
from support import chat, oasst_replies

FOUND = [
    (
        "email",
        "Write to jane.o'neil+news@mail.example.co.uk today.",
        "jane.o'neil+news@mail.example.co.uk",
    ),
    ("email", "Contact: bob@example.com", "bob@example.com"),
    ("phone", "Call +1 415-555-0132 now", "+1 415-555-0132"),
    ("phone", "Ring (212) 555-0199.", "(212) 555-0199"),
    ("phone", "Our London line is 020 7946 0958.", "020 7946 0958"),
    ("phone", "Paris: +33 6 12 34 56 78", "+33 6 12 34 56 78"),
    ("credit_card", "Card 4111 1111 1111 1111 exp 12/29", "4111 1111 1111 1111"),
    ("credit_card", "amex 378282246310005.", "378282246310005"),
    ("iban", "IBAN GB82 WEST 1234 5698 7654 32 please", "GB82 WEST 1234 5698 7654 32"),
    ("iban", "DE89370400440532013000", "DE89370400440532013000"),
    ("us_ssn", "SSN: 536-22-1234", "536-22-1234"),
    ("uk_nino", "NI number AB 12 34 56 C", "AB 12 34 56 C"),
    ("uk_nino", "nino=JG103759A", "JG103759A"),
    ("ip_address", "from 8.8.8.8 and", "8.8.8.8"),
    ("ip_address", "v6 2606:4700:4700::1111.", "2606:4700:4700::1111"),
]


@pytest.mark.parametrize(("kind", "text", "value"), FOUND)
def test_each_type_is_found_where_it_is(kind: str, text: str, value: str) -> None:
    [finding] = find_pii(text)
    assert finding.type == kind
    assert text[finding.start : finding.end] == value


@pytest.mark.parametrize(
    "text",
    [
        "Card 4111 1111 1111 1112",  # fails Luhn
        "Order 1234 5678 9012 3456",  # passes no issuer prefix check… and fails Luhn
        "IBAN GB82 WEST 1234 5698 7654 33",  # wrong check digits
        "SSN 000-12-3456, 666-12-3456, 912-12-3456, 123-00-4567",  # never issued
        "NINO BG 12 34 56 C, QQ123456Z",  # prefix or suffix never used
        "Hosts 192.168.1.1, 10.0.0.7, 127.0.0.1, 2001:db8::1, ::1, 0.0.0.0",  # not public
        "Order 12345678 on 2023-05-01 at 10:30:00; 3.14159; 1,234,567 people",
        "std::vector<int> and the MAC 00:1A:2B:3C:4D:5E, ISBN 978-3-16-148410-0",
        "Call 123-456-7890",  # no such US area code, and the UK wants its trunk 0
        "| 3.7 .624 6.1 .466 1.4 .955 3.8 .615 6.2 .462 1.5 .937 |",  # a table of decimals
        "user@localhost, a@b",
    ],
)
def test_look_alikes_are_not_pii(text: str) -> None:
    assert find_pii(text) == []


def test_overlaps_go_to_the_first_type() -> None:
    text = "card 4111-1111-1111-1111 or write to 4111@example.com"
    assert [f.type for f in find_pii(text)] == ["credit_card", "email"]


def test_masks_never_show_the_whole_value() -> None:
    assert mask("4111 1111 1111 1111") == "**** **** **** **11"
    assert mask("bob@example.com") == "***@*******.*om"
    assert mask("8.8.8.8") == "*.*.*.*"
    for _, text, value in FOUND:
        record = chat(text)
        details = Pii().check(record).details
        [finding] = details["findings"]  # type: ignore[misc]
        assert value not in str(details) and finding["masked"] != value  # type: ignore[index]


def test_check_result_and_message_index() -> None:
    record = chat(
        "My mail is ann@example.org", "Noted, I will write to ann@example.org or +44 20 7946 0958."
    )
    result = Pii().check(record)
    assert result.passed is False and result.score == 3.0
    assert [(f["type"], f["message"], f["start"]) for f in result.details["findings"]] == [  # type: ignore[index,union-attr]
        ("email", 0, 11),
        ("email", 1, 23),
        ("phone", 1, 42),
    ]
    assert "redacted" not in result.details
    assert Pii(on="prompt").check(record).score == 1.0
    assert Pii(on="response").check(record).score == 2.0
    assert Pii(types=["phone"]).check(record).score == 1.0
    assert Pii().check(chat("Nothing personal here.", "Indeed.")).passed is True


def test_redaction_in_details_and_as_a_copy() -> None:
    record = chat("I am ann@example.org, card 4111 1111 1111 1111", "Thanks!")
    record = record.model_copy(
        update={"candidates": [Candidate(content="Call me on +1 415-555-0132")]}
    )
    result = make_check("pii", {"redact": True}).check(record)
    assert result.details["redacted"] == [
        {"message": 0, "content": "I am <EMAIL>, card <CREDIT_CARD>"},
        {"candidate": 0, "content": "Call me on <PHONE>"},
    ]
    clean = redact(record)
    assert clean.messages[0].content == "I am <EMAIL>, card <CREDIT_CARD>"
    assert clean.candidates[0].content == "Call me on <PHONE>"
    assert clean.messages[1].content == "Thanks!"
    assert record.messages[0].content.startswith("I am ann@")  # type: ignore[union-attr]
    assert Pii().check(clean).passed is True
    assert redact(record, types=["email"]).messages[0].content.endswith("4111 1111 1111 1111")


def test_regions_decide_national_phone_numbers() -> None:
    text = "Rufen Sie 030 901820 an"
    assert find_pii(text) == []
    [finding] = find_pii(text, regions=["DE"])
    assert text[finding.start : finding.end] == "030 901820"
    assert Pii(regions=["de"]).check(chat(text)).score == 1.0


def test_unknown_types_are_refused() -> None:
    with pytest.raises(DatamillError, match="no PII type 'name'"):
        make_check("pii", {"types": ["email", "name"]})


def test_hostile_texts() -> None:
    digits = "Lot 123 456 7890 shipped 2024-01-02; " * 28_000  # ~1 MB of number look-alikes
    assert find_pii(digits + "mail eve@example.net") != []
    hidden = "\x00<p>e\u200bve@example.net</p> \u202e+1 415-555-0132\u202c"
    found = find_pii(hidden)
    assert [hidden[f.start : f.end] for f in found] == ["ve@example.net", "+1 415-555-0132"]
    assert (
        find_pii("") == []
        and find_pii("\u0661\u0662\u0663-\u0664\u0665-\u0666\u0667\u0668\u0669") == []
    )


def test_no_false_alarms_on_real_conversations() -> None:
    records = oasst_replies()
    assert [r.id for r in records if Pii().check(r).passed is False] == []

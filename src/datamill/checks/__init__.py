"""Automatic checks: each answers one question about a record and returns a CheckResult."""

from datamill.checks.base import (
    BatchCheck,
    Check,
    RecordCheck,
    chain,
    close_checks,
    passed,
    run_checks,
)
from datamill.checks.registry import available, make_check, options_of, register

__all__ = [
    "BatchCheck",
    "Check",
    "RecordCheck",
    "available",
    "chain",
    "close_checks",
    "make_check",
    "options_of",
    "passed",
    "register",
    "run_checks",
]

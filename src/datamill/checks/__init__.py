"""Automatic checks: each answers one question about a record and returns a CheckResult."""

from datamill.checks.base import Check, passed, run_checks
from datamill.checks.dedup import ExactDedup
from datamill.checks.length import Length

__all__ = ["Check", "ExactDedup", "Length", "passed", "run_checks"]

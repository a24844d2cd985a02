"""What a reader may do with mangled input: give its result, or refuse with one clear X12Error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rcm.x12 import X12Error
from rcm.x12.document import Finding, validate


def read_or_refused(read: Callable[[str], Any], mangled: str) -> Any:
    """``read(mangled)``'s result, or None when it refused; a refusal must be one line that says where.

    Any other exception propagates and fails the test (a reader must never crash on bad input)."""
    refusal: X12Error | None = None
    try:
        result = read(mangled)
    except X12Error as exc:
        refusal = exc
    if refusal is not None:
        message = refusal.describe()
        assert message
        assert "\n" not in message
        where = (refusal.position, refusal.offset, refusal.segment_id)
        assert any(part is not None for part in where) or message.startswith("not X12"), message
        return None
    assert result is not None
    return result


def findings_of(mangled: str) -> list[Finding]:
    """``validate`` never raises: every problem, structural or not, is a finding of one line."""
    findings = validate(mangled)
    assert isinstance(findings, list)
    for finding in findings:
        assert isinstance(finding, Finding)
        assert finding.message
        assert "\n" not in str(finding)
    return findings

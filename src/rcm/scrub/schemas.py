"""Scrub DTOs: which rules ran, which fired and why, and which could not run."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from rcm.scrub.models import ScrubOutcome
from rcm.scrub.rules import RuleSource, RuleStatus
from rcm.tenancy.scrub_rules import RuleSeverity


class Finding(msgspec.Struct):
    message: str  # for the biller: codes, line numbers and dates, never a name or a birth date
    line_number: int | None = None


class RuleReport(msgspec.Struct):
    rule: str  # id@version (manifest rules: manifest:id@version)
    id: str
    version: str
    source: RuleSource
    severity: RuleSeverity
    status: RuleStatus
    title: str
    findings: list[Finding]
    looked_at: list[str]
    reason: str | None = None  # why it could not run (not_checked)


class ScrubReport(msgspec.Struct):
    id: uuid.UUID | None  # the stored run; None on a dry run (nothing is written)
    encounter_id: uuid.UUID
    patient_id: uuid.UUID
    outcome: ScrubOutcome
    dry_run: bool
    scrubbed_at: datetime
    errors: int  # error rules that fired: the claim is blocked
    warnings: int
    not_checked: int  # rules that could not run: never a pass
    fired: list[str]  # rule keys
    not_checked_rules: list[str]
    rules: list[RuleReport]
    work_item_id: uuid.UUID | None = None  # the billing-queue item a failed or incomplete scrub keeps open
    claim_id: uuid.UUID | None = None  # the claim a clean scrub built (or found built by an earlier one)

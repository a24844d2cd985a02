"""Scrub runs and their per-rule results: tenant-owned, insert-only history (RLS forced, see 0018)."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKeyConstraint, Index, SmallInteger, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from rcm.encounters.models import Encounter  # noqa: F401 - the rcm.encounter table runs refer to
from rcm.kit.models import Base, EnumText, TenantOwned, enum_check
from rcm.scrub.rules import RuleSource, RuleStatus
from rcm.tenancy.scrub_rules import RuleSeverity
from rcm.workqueue.models import WorkItem  # noqa: F401 - the rcm.work_item table runs refer to


class ScrubOutcome(StrEnum):
    CLEAN = "clean"  # every error rule ran and none fired: a claim may be built
    FAILED = "failed"  # an error rule fired
    INCOMPLETE = "incomplete"  # none fired, but an error rule could not run (reference data missing)


class ScrubRun(TenantOwned, Base):
    __tablename__ = "scrub_run"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "encounter_id"], ["rcm.encounter.tenant_id", "rcm.encounter.id"]),
        ForeignKeyConstraint(["tenant_id", "work_item_id"], ["rcm.work_item.tenant_id", "rcm.work_item.id"]),
        enum_check("outcome", ScrubOutcome),
        Index("ix_scrub_run_encounter", "tenant_id", "encounter_id", "created_at"),
    )

    encounter_id: Mapped[uuid.UUID]
    outcome: Mapped[ScrubOutcome] = mapped_column(EnumText(ScrubOutcome))
    errors: Mapped[int] = mapped_column(SmallInteger)  # error rules that fired
    warnings: Mapped[int] = mapped_column(SmallInteger)  # warning rules that fired
    not_checked: Mapped[int] = mapped_column(SmallInteger)  # rules that could not run
    actor: Mapped[str] = mapped_column(Text)  # principal subject
    # The billing-queue item this run opened or kept open (failed or incomplete runs).
    work_item_id: Mapped[uuid.UUID | None]
    # The rules that passed, in one value (most rules pass: a clean scrub writes this one row):
    # [{position, id, version, source, severity, title, looked_at}].
    passed: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)


class ScrubResult(TenantOwned, Base):
    """A rule that fired, or could not run, in one run (the passed ones are listed on the run)."""

    __tablename__ = "scrub_result"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "scrub_run_id"], ["rcm.scrub_run.tenant_id", "rcm.scrub_run.id"]),
        enum_check("source", RuleSource),
        enum_check("severity", RuleSeverity),
        CheckConstraint(
            f"status IN ('{RuleStatus.FIRED.value}', '{RuleStatus.NOT_CHECKED.value}')", name="status"
        ),
        Index("ix_scrub_result_run", "tenant_id", "scrub_run_id", "position"),
    )

    scrub_run_id: Mapped[uuid.UUID]
    position: Mapped[int] = mapped_column(SmallInteger)  # the order the rules ran in
    rule_id: Mapped[str] = mapped_column(Text)
    rule_version: Mapped[str] = mapped_column(Text)
    source: Mapped[RuleSource] = mapped_column(EnumText(RuleSource))
    severity: Mapped[RuleSeverity] = mapped_column(EnumText(RuleSeverity))
    status: Mapped[RuleStatus] = mapped_column(EnumText(RuleStatus))
    title: Mapped[str] = mapped_column(Text)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)  # [{message, line_number}]
    looked_at: Mapped[list[str]] = mapped_column(ARRAY(Text))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)

"""Claims, their lines and events, and submission batches: tenant-owned (RLS forced, see 0020_claims);
X12 control numbers: global, allocated per sender id, never reused.

No PHI is stored in clear here beyond what the encounter tables already hold in clear (codes, dates,
charges); the patient control number is random, never derived from the patient."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from rcm.claims.states import Cause, ClaimState, Responsibility
from rcm.encounters.models import Encounter  # noqa: F401 - the rcm.encounter table claims refer to
from rcm.kit.models import Base, EnumText, TenantOwned, enum_check, utcnow
from rcm.patients.models import Coverage  # noqa: F401 - the rcm.coverage table claims refer to
from rcm.tenancy.vocabulary import ClaimType


class BatchStatus(StrEnum):
    PENDING = "pending"  # built, its control numbers allocated; not yet handed to the connector
    # Committed before the connector is called: found so after a crash, the batch is probed, not re-sent.
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DEAD = "dead"  # a permanent error or retries exhausted: a billing-queue item lets a biller replay it


class SubmissionBatch(TenantOwned, Base):
    """Ready claims of ONE practice for one payer, under one interchange (ISA/GS/ST numbers recorded)."""

    __tablename__ = "submission_batch"
    __table_args__ = (
        UniqueConstraint(
            "tenant_id", "sender_id", "interchange_control_number", name="uq_submission_batch_interchange"
        ),
        enum_check("status", BatchStatus),
        CheckConstraint("attempts >= 0", name="attempts"),
        # What the relay reads across practices: batches still to send, by when they are due.
        Index(
            "ix_submission_batch_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'sending')"),
        ),
    )

    payer_id: Mapped[str] = mapped_column(Text)
    connector: Mapped[str | None] = mapped_column(Text, nullable=True)  # the directory's claims connector
    sender_id: Mapped[str] = mapped_column(Text)  # ISA06 / GS02
    receiver_id: Mapped[str] = mapped_column(Text)  # ISA08 / GS03
    interchange_control_number: Mapped[int] = mapped_column(Integer)  # ISA13 (and IEA02)
    group_control_number: Mapped[int] = mapped_column(Integer)  # GS06 (and GE02)
    transaction_set_control_number: Mapped[str] = mapped_column(Text)  # ST02 (and SE02)
    claim_count: Mapped[int] = mapped_column(Integer)
    status: Mapped[BatchStatus] = mapped_column(EnumText(BatchStatus))
    sent_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), onupdate=utcnow)
    # The outbox (rcm.claims.submission): connector calls spent, when the relay sends the batch's message
    # again (backoff, a circuit's cool-down, or the lease of a call in flight), the last error in words
    # (connector, operation, reason: never content) and the clearinghouse's receipt.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    receipt_reference: Mapped[str | None] = mapped_column(Text, nullable=True)
    # One 837P or one 837I interchange, never both (claims are batched by type).
    claim_type: Mapped[ClaimType] = mapped_column(
        EnumText(ClaimType), default=ClaimType.PROFESSIONAL, server_default=ClaimType.PROFESSIONAL.value
    )


class Claim(TenantOwned, Base):
    __tablename__ = "claim"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "encounter_id"], ["rcm.encounter.tenant_id", "rcm.encounter.id"]),
        ForeignKeyConstraint(["tenant_id", "patient_id"], ["rcm.patient.tenant_id", "rcm.patient.id"]),
        ForeignKeyConstraint(["tenant_id", "coverage_id"], ["rcm.coverage.tenant_id", "rcm.coverage.id"]),
        ForeignKeyConstraint(["tenant_id", "original_claim_id"], ["rcm.claim.tenant_id", "rcm.claim.id"]),
        ForeignKeyConstraint(["tenant_id", "primary_claim_id"], ["rcm.claim.tenant_id", "rcm.claim.id"]),
        ForeignKeyConstraint(
            ["tenant_id", "submission_batch_id"],
            ["rcm.submission_batch.tenant_id", "rcm.submission_batch.id"],
        ),
        UniqueConstraint("tenant_id", "patient_control_number"),
        enum_check("state", ClaimState),
        enum_check("responsibility", Responsibility),
        CheckConstraint("frequency IN (1, 7, 8)", name="frequency"),
        CheckConstraint("patient_control_number ~ '^[A-Z0-9]{1,20}$'", name="patient_control_number"),
        CheckConstraint("(frequency = 1) = (original_claim_id IS NULL)", name="original"),
        CheckConstraint("total_charge_cents >= 0", name="total_charge_cents"),
        CheckConstraint("primary_claim_id IS NULL OR responsibility <> 'primary'", name="primary_claim"),
        # One original per encounter and responsibility: scrubbing twice builds one claim.
        Index(
            "uq_claim_original",
            "tenant_id",
            "encounter_id",
            "responsibility",
            unique=True,
            postgresql_where=text("frequency = 1"),
        ),
        Index("ix_claim_created", "tenant_id", "created_at", "id"),
        Index("ix_claim_state", "tenant_id", "state", "created_at", "id"),
        Index("ix_claim_encounter", "tenant_id", "encounter_id"),
        # 277CA and 835 answers matched by the payer's number (CLP07, REF*1K) when CLM01 finds nothing.
        Index(
            "ix_claim_payer_control_number",
            "tenant_id",
            "payer_claim_control_number",
            postgresql_where=text("payer_claim_control_number IS NOT NULL"),
        ),
        Index(
            "ix_claim_unbatched",
            "tenant_id",
            "payer_id",
            "created_at",
            postgresql_where=text("state = 'ready' AND submission_batch_id IS NULL"),
        ),
        Index("ix_claim_batch", "tenant_id", "submission_batch_id"),
        # An 835's question, per chunk adjudicated: which claims have a next payer's claim already.
        Index(
            "ix_claim_primary_claim",
            "tenant_id",
            "primary_claim_id",
            postgresql_where=text("primary_claim_id IS NOT NULL"),
        ),
    )

    encounter_id: Mapped[uuid.UUID]
    patient_id: Mapped[uuid.UUID]
    coverage_id: Mapped[uuid.UUID | None]
    payer_id: Mapped[str] = mapped_column(Text)  # a payer of the directory
    responsibility: Mapped[Responsibility] = mapped_column(EnumText(Responsibility))
    state: Mapped[ClaimState] = mapped_column(EnumText(ClaimState))
    frequency: Mapped[int] = mapped_column(SmallInteger)  # CLM05-3: 1, 7, 8 (``states.Frequency``)
    patient_control_number: Mapped[str] = mapped_column(Text)  # CLM01; the 835's CLP01 comes back with it
    original_claim_id: Mapped[uuid.UUID | None]  # the claim a replacement or void changes
    # REF*F8 of a replacement or void: the payer's claim control number of the claim it changes.
    original_payer_claim_control_number: Mapped[str | None] = mapped_column(Text, nullable=True)
    payer_claim_control_number: Mapped[str | None] = mapped_column(Text, nullable=True)  # once known
    service_date: Mapped[date]
    place_of_service: Mapped[str] = mapped_column(Text)
    diagnoses: Mapped[list[str]] = mapped_column(ARRAY(Text))  # HI01..HI12, in order
    total_charge_cents: Mapped[int] = mapped_column(BigInteger)  # CLM02
    submission_batch_id: Mapped[uuid.UUID | None]
    state_changed_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    closed_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    claim_type: Mapped[ClaimType] = mapped_column(  # its encounter's: 837P or 837I
        EnumText(ClaimType), default=ClaimType.PROFESSIONAL, server_default=ClaimType.PROFESSIONAL.value
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), onupdate=utcnow)
    # A secondary claim: the primary claim whose 835 built it (a tertiary: the secondary's). Its payers'
    # adjudications (``ClaimAdjudication``) are the 837's loops 2320/2430 (``rcm.claims.secondary``).
    primary_claim_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)


class ClaimAdjudication(TenantOwned, Base):
    """What a payer's 835 said of a claim (CLP, claim CAS, per line SVC03 and CAS, the remittance date), kept
    when the next payer's claim is built from it: that claim's 837 tells its payer (2320/2430). Codes and
    amounts only. Versioned, each version written once (the app role may only INSERT and SELECT): version 1
    is the adjudication the next payer's claim was built from; a reversal of that payment (CLP02 22) adds
    the next version, superseding it, and the correction that follows the next, the current one. The
    claim's standing adjudication is its latest version unless that is a reversal (none stands then)."""

    __tablename__ = "claim_adjudication"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "claim_id"], ["rcm.claim.tenant_id", "rcm.claim.id"]),
        ForeignKeyConstraint(["tenant_id", "x12_file_id"], ["rcm.x12_file.tenant_id", "rcm.x12_file.id"]),
        UniqueConstraint("tenant_id", "claim_id", "version"),
        CheckConstraint("version >= 1", name="version"),
    )

    claim_id: Mapped[uuid.UUID]
    version: Mapped[int] = mapped_column(SmallInteger)
    x12_file_id: Mapped[uuid.UUID | None]  # the 835 it was read from
    payer_id: Mapped[str] = mapped_column(Text)  # the claim's payer (2330B NM109 on the next claim)
    claim_status: Mapped[str] = mapped_column(Text)  # CLP02
    payer_claim_control_number: Mapped[str | None] = mapped_column(Text, nullable=True)  # CLP07 (REF*F8)
    charge_cents: Mapped[int] = mapped_column(BigInteger)  # CLP03
    paid_cents: Mapped[int] = mapped_column(BigInteger)  # CLP04 (AMT*D)
    patient_responsibility_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # CLP05
    adjudicated_on: Mapped[date]  # the remittance's date (BPR16): DTP*573
    # [{"group": "CO", "reason": "45", "amount": 2550, "quantity": null}, ...]: the claim's CAS
    adjustments: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    # [{"line_number": 1, "paid": 8000, "procedure": "99213", "modifiers": [], "units": "1",
    #   "adjustments": [...]}, ...]: each line the 835 named back (REF*6R), its SVC03 and CAS
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)


class ClaimLine(TenantOwned, Base):
    """A service line as the claim was built (later coding changes do not alter it). Append-only."""

    __tablename__ = "claim_line"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "claim_id"], ["rcm.claim.tenant_id", "rcm.claim.id"]),
        UniqueConstraint("tenant_id", "claim_id", "line_number"),
    )

    claim_id: Mapped[uuid.UUID]
    line_number: Mapped[int] = mapped_column(SmallInteger)
    procedure_code: Mapped[str] = mapped_column(Text)
    modifiers: Mapped[list[str]] = mapped_column(ARRAY(Text))
    units: Mapped[int] = mapped_column(Integer)
    charge_cents: Mapped[int] = mapped_column(BigInteger)
    diagnosis_pointers: Mapped[list[int]] = mapped_column(ARRAY(SmallInteger))
    service_date: Mapped[date]
    revenue_code: Mapped[str | None] = mapped_column(Text, nullable=True)  # 837I SV201


class ClaimEvent(TenantOwned, Base):
    """One transition of a claim, never updated: the app role may only INSERT and SELECT."""

    __tablename__ = "claim_event"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "claim_id"], ["rcm.claim.tenant_id", "rcm.claim.id"]),
        # The X12 file (rcm.interchanges) whose acknowledgment, remittance or status answer made the move.
        ForeignKeyConstraint(["tenant_id", "x12_file_id"], ["rcm.x12_file.tenant_id", "rcm.x12_file.id"]),
        enum_check("from_state", ClaimState),
        enum_check("to_state", ClaimState),
        enum_check("cause", Cause),
        Index("ix_claim_event_claim", "tenant_id", "claim_id", "created_at"),
        # The KPIs' period reads: a state's moves in a time range (0051).
        Index(
            "ix_claim_event_state_time",
            "tenant_id",
            "to_state",
            "created_at",
            postgresql_include=["claim_id", "cause"],
        ),
    )

    claim_id: Mapped[uuid.UUID]
    from_state: Mapped[ClaimState | None] = mapped_column(EnumText(ClaimState), nullable=True)
    to_state: Mapped[ClaimState] = mapped_column(EnumText(ClaimState))
    cause: Mapped[Cause] = mapped_column(EnumText(Cause))
    actor: Mapped[str | None] = mapped_column(Text, nullable=True)  # principal subject; None for payers
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)  # a biller's reason, a payer's code
    payer_claim_control_number: Mapped[str | None] = mapped_column(Text, nullable=True)
    x12_file_id: Mapped[uuid.UUID | None]


class X12ControlCounter(Base):
    """The last interchange control number allocated per sender id (ISA06). Global: a sender id may serve
    several practices (a billing company's clearinghouse id), and its numbers must never repeat."""

    __tablename__ = "x12_control_counter"
    __table_args__ = (CheckConstraint("last_number BETWEEN 1 AND 999999999", name="last_number"),)

    sender_id: Mapped[str] = mapped_column(Text, primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class X12ControlNumber(Base):
    """Every number allocated, once: the primary key refuses a reuse even if the counter went back."""

    __tablename__ = "x12_control_number"

    sender_id: Mapped[str] = mapped_column(Text, primary_key=True)
    control_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    allocated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

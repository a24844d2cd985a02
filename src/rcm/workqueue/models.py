"""Work items and their transitions. The vocabularies are enums shared by model, service and (later) DTOs."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import CheckConstraint, Dialect, ForeignKeyConstraint, Index, SmallInteger, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from rcm.kit.models import Base, TenantOwned, enum_check, utcnow

E = TypeVar("E", bound=enum.StrEnum)


class QueueKind(enum.StrEnum):
    CODING = "coding"
    BILLING = "billing"


class SubjectType(enum.StrEnum):
    """What an item is about. No foreign key: the subject lives in its own domain's table."""

    ENCOUNTER = "encounter"
    CLAIM = "claim"
    REMITTANCE = "remittance"
    ELIGIBILITY_CHECK = "eligibility_check"
    SUBMISSION_BATCH = "submission_batch"  # a batch the connector could not deliver (a dead letter)


class BillingReason(enum.StrEnum):
    """Why an item is in the billing queue (coding items have no reason)."""

    SCRUB_FAILURE = "scrub_failure"  # an error rule fired, or could not run
    REJECTION = "rejection"  # a 999 or 277CA rejected the claim
    ELIGIBILITY = "eligibility"  # the 271 says the coverage is not active
    DEAD_LETTER = "dead_letter"  # a job about the subject failed past its retries
    FOLLOW_UP = "follow_up"  # no answer from the payer after its status-inquiry days
    ENROLLMENT = "enrollment"  # the practice is not enrolled with the claim's payer
    DENIAL = "denial"  # an 835 denied the claim or a line; due at its appeal deadline (rcm.denials)
    # A primary's payment was reversed (835 CLP02 22) after its secondary was built: the secondary bills
    # what the primary no longer paid; correct it (replace or void) once the primary's correction comes.
    COB_CORRECTION = "cob_correction"


class ItemStatus(enum.StrEnum):
    OPEN = "open"
    LEASED = "leased"  # someone works on it until lease_expires_at; after that it is open to lease again
    WAITING = "waiting"  # a query is with the practice; its answer returns the item to the queue
    DONE = "done"
    CANCELLED = "cancelled"


class ItemEventType(enum.StrEnum):
    CREATED = "created"
    LEASED = "leased"
    RELEASED = "released"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    DRAFTED = "drafted"
    QUERIED = "queried"
    ANSWERED = "answered"
    REASSIGNED = "reassigned"
    REPRIORITISED = "reprioritised"


LIVE_STATUSES = (ItemStatus.OPEN, ItemStatus.LEASED, ItemStatus.WAITING)


class EnumText(TypeDecorator[E], Generic[E]):
    """A ``StrEnum`` stored as text (the migration CHECKs the values): adding a value later is a CHECK
    change, not an ``ALTER TYPE`` that cannot run in a transaction."""

    impl = Text
    cache_ok = True

    def __init__(self, enum_type: type[E]) -> None:
        super().__init__()
        self.enum_type = enum_type

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum_type(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> E | None:
        return None if value is None else self.enum_type(value)


_LIVE = text("status IN ('open', 'leased', 'waiting')")
_LEASABLE = text("status IN ('open', 'leased')")


class WorkItem(TenantOwned, Base):
    """One piece of work in a queue: what it is about, how urgent, and who holds it until when."""

    __tablename__ = "work_item"
    __table_args__ = (
        enum_check("kind", QueueKind),
        enum_check("subject_type", SubjectType),
        enum_check("status", ItemStatus),
        enum_check("reason", BillingReason),
        CheckConstraint(
            "(status = 'leased') = (leased_by IS NOT NULL AND lease_expires_at IS NOT NULL)", name="lease"
        ),
        Index(
            "uq_work_item_live_subject",
            "tenant_id",
            "kind",
            "subject_type",
            "subject_id",
            unique=True,
            postgresql_where=_LIVE,
        ),
        # The lease walks practices in turn (least recently served first), each by priority and due date.
        Index(
            "ix_work_item_lease",
            "tenant_id",
            "kind",
            "priority",
            "due_at",
            "id",
            postgresql_where=_LEASABLE,
        ),
        Index("ix_work_item_served", "tenant_id", "kind", "leased_at"),
        Index("ix_work_item_subject", "tenant_id", "subject_type", "subject_id"),
    )

    kind: Mapped[QueueKind] = mapped_column(EnumText(QueueKind))
    subject_type: Mapped[SubjectType] = mapped_column(EnumText(SubjectType))
    subject_id: Mapped[uuid.UUID]
    status: Mapped[ItemStatus] = mapped_column(EnumText(ItemStatus))
    priority: Mapped[int] = mapped_column(SmallInteger)  # lower is sooner
    due_at: Mapped[datetime]  # from the practice's SLA for this queue
    reason: Mapped[BillingReason | None] = mapped_column(EnumText(BillingReason), nullable=True)
    leased_by: Mapped[str | None] = mapped_column(Text, nullable=True)  # the holder's principal subject
    lease_expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # When the last lease began (kept after it ends): the practice served least recently is served next.
    leased_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), onupdate=utcnow)


class WorkItemEvent(TenantOwned, Base):
    """One transition of a work item, never updated."""

    __tablename__ = "work_item_event"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "work_item_id"], ["rcm.work_item.tenant_id", "rcm.work_item.id"]),
        enum_check("event", ItemEventType),
        enum_check("status", ItemStatus),
        Index("ix_work_item_event", "tenant_id", "work_item_id", "created_at"),
    )

    work_item_id: Mapped[uuid.UUID]
    event: Mapped[ItemEventType] = mapped_column(EnumText(ItemEventType))
    status: Mapped[ItemStatus] = mapped_column(EnumText(ItemStatus))  # the item's status after the event
    actor: Mapped[str | None] = mapped_column(Text, nullable=True)  # principal subject; None for intake jobs
    lease_expires_at: Mapped[datetime | None] = mapped_column(nullable=True)

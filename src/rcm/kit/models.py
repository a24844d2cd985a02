"""Declarative base and the tenant-owned mixin.

Every tenant-owned table has ``tenant_id`` as the first column of its primary key and of every foreign key,
so the schema can be distributed by ``tenant_id`` (Citus) without rewriting keys.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Generic, Self, TypeVar

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, MetaData, Text, func
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from rcm.config import SCHEMA

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def time_ordered_uuid() -> uuid.UUID:
    """A version 7 UUID (RFC 9562): the Unix time in milliseconds, then 74 random bits. Rows appended in
    bulk with these keys (ledger postings and entries) fill their indexes' right-hand pages instead of
    touching a random page per row."""
    rand = int.from_bytes(os.urandom(10))
    value = (time.time_ns() // 1_000_000) << 80 | 0x7 << 76 | (rand >> 64 & 0xFFF) << 64
    return uuid.UUID(int=value | 0b10 << 62 | rand & (1 << 62) - 1)


E = TypeVar("E", bound=StrEnum)


def enum_check(column: str, values: type[StrEnum]) -> CheckConstraint:
    """The CHECK keeping a text ``column`` to the enum's values, named after the column (the naming
    convention makes it ``ck_<table>_<column>``, as the migrations write it)."""
    listed = ", ".join(f"'{member.value}'" for member in values)
    return CheckConstraint(f"{column} IN ({listed})", name=column)


class EnumText(TypeDecorator[E], Generic[E]):
    """A ``text`` column holding a StrEnum's values: the schema keeps plain text (and its CHECK constraints,
    written in the migrations), Python sees the enum member, never a bare string."""

    impl = Text
    cache_ok = True

    def __init__(self, enum: type[E]) -> None:
        super().__init__()
        self.enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA, naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[object, object]] = {datetime: DateTime(timezone=True)}

    # Columns holding PHI ciphertext (bytea). The declaration drives encryption, redaction and audit detail.
    __phi_columns__: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def build(cls, **values: Any) -> Self:
        """A new instance holding ``values``, as ``cls(**values)`` but without the declarative constructor's
        attribute events (each set goes through change tracking: most of the CPU of building a row).

        For rows built by the thousand (a bulk batch) and written by Core statements, which read the
        values as they read any instance's; the instance is as the constructor leaves it, only built
        faster. A name that is not a mapped attribute is refused, as the constructor refuses it.
        """
        known = _ATTRIBUTES.get(cls)
        if known is None:
            known = _ATTRIBUTES[cls] = frozenset(cls.__mapper__.attrs.keys())
        if not known.issuperset(values):
            raise TypeError(f"{cls.__name__}: not mapped attributes: {sorted(set(values) - known)}")
        row: Self = cls.__mapper__.class_manager.new_instance()
        row.__dict__.update(values)
        return row


_ATTRIBUTES: dict[type[Base], frozenset[str]] = {}


class TenantOwned:
    """Mixin: composite primary key ``(tenant_id, id)`` with an application-generated UUID.

    The id is generated in Python because PHI ciphertext binds the row id in its associated data, so it must
    be known before the INSERT.
    """

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

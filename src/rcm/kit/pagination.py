"""Keyset (cursor) pagination: stable under concurrent inserts, no OFFSET scans."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

import msgspec
from sqlalchemy import ColumnElement, literal, tuple_

from rcm.kit.errors import FieldError, InvalidInput

T = TypeVar("T")


class _Keyed(Protocol):
    @property
    def created_at(self) -> datetime: ...

    @property
    def id(self) -> uuid.UUID: ...


R = TypeVar("R", bound=_Keyed)

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class Page(msgspec.Struct, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, row_id = base64.urlsafe_b64decode(padded).decode().split("|")
        return datetime.fromisoformat(stamp), uuid.UUID(row_id)
    except ValueError as exc:
        raise InvalidInput(
            "The cursor is not one this API issued.", errors=[FieldError("query:cursor", "invalid")]
        ) from exc


def after_key(created_at: Any, row_id: Any, after: tuple[datetime, uuid.UUID]) -> ColumnElement[bool]:
    """``(created_at, id) > cursor``: the keyset condition for the next page (uses the (tenant, created, id)
    index)."""
    return tuple_(created_at, row_id) > tuple_(literal(after[0]), literal(after[1]))


def paginate(rows: Sequence[R], limit: int, view: Callable[[R], T]) -> Page[T]:
    """Rows fetched with ``limit + 1`` become a page; the extra row only says that another page exists."""
    return paginate_views(rows, limit, lambda shown: [view(row) for row in shown])


def paginate_views(rows: Sequence[R], limit: int, views: Callable[[Sequence[R]], list[T]]) -> Page[T]:
    """``paginate`` with one call for the page's rows (a view that sets up once per page, not per row)."""
    shown = rows[:limit]
    last = shown[-1] if shown else None
    more = len(rows) > limit and last is not None
    cursor = encode_cursor(last.created_at, last.id) if more and last is not None else None
    return Page(items=views(shown), next_cursor=cursor)

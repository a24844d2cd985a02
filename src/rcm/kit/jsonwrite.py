"""Writes of many tables' rows in ONE constant statement: each table's rows are one JSON parameter,
inserted by a data-modifying CTE.

``json_populate_recordset`` converts each field to its column's type, so the statement text depends only
on the tables, never on the number of rows: SQLAlchemy compiles it once per process and asyncpg prepares
it once per connection, where a multi-row VALUES is compiled afresh on every request. Identifiers come
from the metadata; values only ever travel in the parameters.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, cast

import msgspec
from sqlalchemy import LargeBinary, Table, inspect

from rcm.kit.models import TenantOwned

ColumnSpec = tuple[tuple[str, str, Callable[[], Any] | None], ...]
_ENCODER = msgspec.json.Encoder()


def populate(table: Table, columns: Sequence[str]) -> str:
    """``INSERT`` of the rows given as one JSON array parameter named after the table."""
    names = ", ".join(columns)
    return (
        f"INSERT INTO {table.fullname} ({names}) SELECT {names} "  # noqa: S608 - identifiers from metadata
        f"FROM json_populate_recordset(NULL::{table.fullname}, CAST(:{table.name} AS json))"
    )


def model_columns(model: Any) -> ColumnSpec:
    """(attribute, column, Python default) of every mapped column of ``model``.

    A JSON field left out (or null) is NULL, not the column's default: defaults are applied in Python, as
    the ORM would, so a column added later with a default needs no change to the writes.
    """
    columns = []
    for attr in inspect(model).column_attrs:
        column = attr.columns[0]
        default = column.default
        if default is None and column.server_default is not None and not column.nullable:
            # It would be written NULL (json_populate_recordset knows no defaults): say so at import.
            raise TypeError(f"{model.__name__}.{attr.key}: give the server default a Python default too")
        if default is None:
            make = None
        elif default.is_callable:
            make = partial(default.arg, None)  # SQLAlchemy wraps a callable to take an execution context
        elif default.is_scalar:
            make = partial(lambda value: value, default.arg)
        else:
            raise TypeError(f"{model.__name__}.{attr.key}: a SQL default cannot be applied in Python")
        columns.append((attr.key, column.name, make))
    return tuple(columns)


def json_value(value: Any) -> Any:
    # bytea's text input form; everything else msgspec encodes as PostgreSQL reads it from JSON.
    return "\\x" + value.hex() if isinstance(value, bytes) else value


def table_name(model: Any) -> str:
    return cast(Table, model.__table__).name


@dataclass(frozen=True, slots=True)
class _Layout:
    """A model's columns as the writes read them off its objects."""

    keys: tuple[str, ...]  # attribute per column, in column order
    names: tuple[str, ...]  # column names
    defaults: tuple[tuple[int, str, Callable[[], Any]], ...]  # (position, attribute, Python default)
    binary: tuple[int, ...]  # positions of bytea columns


@functools.lru_cache(maxsize=256)
def _layout(model: Any, spec: ColumnSpec) -> _Layout:
    attrs = inspect(model).column_attrs
    binary = {attr.key for attr in attrs if isinstance(attr.columns[0].type, LargeBinary)}
    return _Layout(
        keys=tuple(key for key, _, _ in spec),
        names=tuple(name for _, name, _ in spec),
        defaults=tuple(
            (index, key, default) for index, (key, _, default) in enumerate(spec) if default is not None
        ),
        binary=tuple(index for index, (key, _, _) in enumerate(spec) if key in binary),
    )


def _values(row: TenantOwned, layout: _Layout, tenant_id: uuid.UUID, now: datetime) -> list[Any]:
    """``row``'s column values in column order, ``tenant_id`` stamped and unset columns defaulted (on the
    object too)."""
    # A new object's set attributes are in its __dict__ (read there: the instrumented getattr costs more
    # than the rest of the loop on a bulk batch); an attribute never set is absent.
    given = row.__dict__
    if given.get("tenant_id") != tenant_id:
        row.tenant_id = tenant_id
    values = [given.get(key) for key in layout.keys]
    for index, key, default in layout.defaults:
        if values[index] is None:
            # One instant for every timestamp of the write; other defaults as the model says. Set as
            # ``build`` sets values (no attribute events): the row is written by a Core statement.
            values[index] = given[key] = now if key in ("created_at", "updated_at") else default()
    return values


def rows_params(
    columns: dict[Any, ColumnSpec], rows: Iterable[TenantOwned], *, tenant_id: uuid.UUID, now: datetime
) -> dict[str, list[dict[str, Any]]]:
    """Each table's rows as JSON-ready dicts (every table of ``columns``, empty when it has no row).

    Stamps ``tenant_id`` and fills unset columns with their defaults on the objects too (one instant for
    every timestamp), so the caller's objects hold what the database holds.
    """
    batches: dict[str, list[dict[str, Any]]] = {table_name(model): [] for model in columns}
    # Per model, once per call: its layout and the list its rows join.
    plan = {model: (_layout(model, spec), batches[table_name(model)]) for model, spec in columns.items()}
    for row in rows:
        layout, batch = plan[type(row)]
        values = _values(row, layout, tenant_id, now)
        for index in layout.binary:
            values[index] = json_value(values[index])
        batch.append(dict(zip(layout.names, values, strict=True)))
    return batches


def encode(batches: Mapping[str, list[dict[str, Any]]]) -> dict[str, str]:
    """The statement's parameters: one JSON text per table."""
    return {name: _ENCODER.encode(rows).decode() for name, rows in batches.items()}

"""PHI columns sealed and opened by their model's declaration (``__phi_columns__``).

Writing a row goes through ``seal``, which refuses to encrypt anything but exactly the declared set: a PHI
column added to a model cannot be written in clear by a caller that forgot it, and a non-PHI column cannot
be smuggled into ciphertext unnoticed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from rcm.crypto.keyring import FieldOpener, TenantKeyring


def seal(
    keyring: TenantKeyring, model: type[Any], row_id: uuid.UUID, values: Mapping[str, str | None]
) -> dict[str, bytes | None]:
    declared = set(model.__phi_columns__)
    if set(values) != declared:
        raise ValueError(
            f"{model.__name__}: seal exactly its PHI columns {sorted(declared)}, got {sorted(values)}"
        )
    table = model.__tablename__
    return {
        column: keyring.encrypt_str(table=table, column=column, row_id=row_id, value=value)
        for column, value in values.items()
    }


def unseal(keyring: TenantKeyring, row: Any, *, model: type[Any] | None = None) -> dict[str, str | None]:
    """Decrypt ``row``'s PHI columns: an ORM object, or a plain result row of ``model``'s columns (the
    lean read paths select columns, not entities, to skip building ORM objects they only read once)."""
    model = model or type(row)
    columns: tuple[str, ...] = model.__phi_columns__
    opened = opener(keyring, model).open(row.id, [getattr(row, column) for column in columns])
    return dict(zip(columns, opened, strict=True))


def opener(keyring: TenantKeyring, model: type[Any]) -> FieldOpener:
    """Opens ``model``'s PHI columns, in their declared order, for many rows (a page of a list)."""
    return keyring.opener(model.__tablename__, model.__phi_columns__)

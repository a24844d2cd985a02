"""The registry of PHI columns, derived from models that declare ``__phi_columns__``.

Re-encryption after a rotation walks it, so a new PHI column is covered as soon as its model declares it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import LargeBinary, Table

from rcm.kit.models import Base, TenantOwned


@dataclass(frozen=True, slots=True)
class PhiTable:
    """A tenant-owned table and its ciphertext columns. ``name`` is what ciphertexts bind as their table."""

    name: str
    table: Table
    columns: tuple[str, ...]


class PhiDeclarationError(TypeError):
    pass


def phi_tables() -> list[PhiTable]:
    found: list[PhiTable] = []
    for mapper in Base.registry.mappers:
        model = mapper.class_
        columns: tuple[str, ...] = getattr(model, "__phi_columns__", ())
        if not columns:
            continue
        if not issubclass(model, TenantOwned):
            raise PhiDeclarationError(f"{model.__name__}: PHI tables must be TenantOwned")
        table = mapper.local_table
        assert isinstance(table, Table)
        for column in columns:
            if column not in table.c or not isinstance(table.c[column].type, LargeBinary):
                raise PhiDeclarationError(f"{model.__name__}.{column}: PHI columns are bytea (LargeBinary)")
        found.append(PhiTable(name=table.name, table=table, columns=tuple(columns)))
    return sorted(found, key=lambda entry: entry.name)

"""Running Alembic from code, and knowing whether the database is at head."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from collections.abc import Collection, Mapping
from functools import cache
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, text
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.engine import Connection
from sqlalchemy.types import UserDefinedType

from rcm.config import SCHEMA
from rcm.kit.package_data import data_path

# Modules holding Core tables outside a package's ``models`` module (the audit trail is written in Core).
CORE_TABLE_MODULES = ("rcm.audit.repository",)


def alembic_config(
    database_url: str, *, app_password: str | None = None, control_password: str | None = None
) -> Config:
    # The repository's files in a checkout, the wheel's copies in an installed package (rcm.kit.package_data).
    config = Config(str(data_path("alembic.ini")))
    config.set_main_option("script_location", str(data_path("migrations")))
    config.attributes["database_url"] = database_url
    config.attributes["app_password"] = app_password
    config.attributes["control_password"] = control_password
    return config


def upgrade_to_head(
    database_url: str, *, app_password: str | None = None, control_password: str | None = None
) -> None:
    config = alembic_config(database_url, app_password=app_password, control_password=control_password)
    command.upgrade(config, "head")


async def upgrade_to_head_async(
    database_url: str, *, app_password: str | None = None, control_password: str | None = None
) -> None:
    # env.py runs its own event loop; keep it off ours.
    await asyncio.to_thread(
        upgrade_to_head, database_url, app_password=app_password, control_password=control_password
    )


@cache
def head_revision() -> str | None:
    script = ScriptDirectory.from_config(alembic_config(""))
    return script.get_current_head()


def model_metadata() -> MetaData:
    """The metadata of every table the code maps: each package's ``models`` module and the Core tables.

    Loaded by module name, so the kit keeps knowing no domain. A table missing here shows up in the drift
    test (tests/test_schema_drift.py) as one autogenerate would drop, so nothing is silently left out.
    """
    import rcm
    from rcm.kit.models import Base

    for module in pkgutil.walk_packages(rcm.__path__, "rcm."):
        if module.name.rsplit(".", 1)[-1] == "models":
            importlib.import_module(module.name)
    for name in CORE_TABLE_MODULES:
        importlib.import_module(name)
    return Base.metadata


def partition_names(connection: Connection) -> frozenset[str]:
    """Partitions in our schema: made at run time (audit months), never modelled by the ORM."""
    rows = connection.execute(
        text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = :schema AND c.relispartition"
        ),
        {"schema": SCHEMA},
    )
    return frozenset(rows.scalars())


def autogenerate_options(connection: Connection) -> dict[str, Any]:
    """How autogenerate compares the models with the database: env.py and the drift test use the same.

    What the comparison deliberately leaves out, and why:
    - other schemas (``public``, tests' scratch schemas): the application lives in ``rcm`` alone;
    - partitions and their indexes: ``rcm.audit_ensure_partition`` makes them month by month; the ORM models
      the partitioned parent only;
    - row-level security, policies, grants, triggers and functions: autogenerate cannot see them; the
      isolation tests (tests/isolation/test_catalog.py) check them from the catalog instead.
    Check constraints are not compared by alembic either; their names follow the naming convention.
    """
    _reflect_xid8()
    partitions = partition_names(connection)

    def include_name(name: str | None, type_: str, parent_names: Mapping[str, str | None]) -> bool:
        if type_ == "schema":
            return name == SCHEMA
        if type_ == "table":
            return name not in partitions
        return parent_names.get("table_name") not in partitions

    return {
        "target_metadata": model_metadata(),
        "include_schemas": True,
        "include_name": include_name,
        "compare_type": True,
        "compare_server_default": True,
        "version_table_schema": SCHEMA,
    }


class _Xid8(UserDefinedType[int]):
    """PostgreSQL's xid8, as reflection sees it (it compiles like the audit tables' own declaration)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "xid8"


def _reflect_xid8() -> None:
    # Reflection does not know xid8 (audit_event.xid, the chainer's watermark): without this its columns
    # come back untyped and are skipped by the type comparison instead of compared like any other.
    ischema_names.setdefault("xid8", _Xid8)


def pending_changes(connection: Connection) -> Collection[Any]:
    """What ``alembic revision --autogenerate`` would write against this database: nothing, when in sync."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    options = autogenerate_options(connection)
    metadata = options.pop("target_metadata")
    context = MigrationContext.configure(connection, opts=options)
    return list(compare_metadata(context, metadata))

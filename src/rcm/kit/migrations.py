"""Running Alembic from code, and knowing whether the database is at head."""

from __future__ import annotations

import asyncio
from functools import cache

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from rcm.kit.package_data import data_path


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

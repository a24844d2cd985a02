"""Plumbing shared by the ``rcm`` command and the sub-commands that live with their packages.

Sub-packages import these from here, never from ``rcm.cli``: the main group imports them to register their
commands, so an import back up would be a cycle (and the layering contracts in pyproject forbid it).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from rcm.config import SettingError, Settings, get_settings

T = TypeVar("T")


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(coro_fn())  # type: ignore[arg-type]


def admin_url(settings: Settings) -> str:
    """The administrative URL; starts the embedded PostgreSQL under RCM_DATA_DIR when none is configured."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    from rcm.kit.embedded import EmbeddedPostgresUnavailable, start_embedded_postgres

    try:
        url = start_embedded_postgres(settings.data_dir / "pg")
    except EmbeddedPostgresUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    os.environ["RCM_DATABASE_URL"] = url
    get_settings.cache_clear()
    click.echo(f"embedded PostgreSQL running, data in {settings.data_dir / 'pg'}", err=True)
    return url


def role_database(settings: Settings, *, control: bool = False) -> Settings:
    """Settings from which the app-role (or control-role) URL resolves, without demanding the admin URL.

    ``RCM_APP_DATABASE_URL`` / ``RCM_CONTROL_DATABASE_URL`` are used as given; without them the URL is derived
    from ``RCM_DATABASE_URL``, and with neither, in dev, the embedded server is started. Anywhere else the
    missing variable is named and the command stops.
    """
    configured = settings.control_database_url if control else settings.app_database_url
    if configured is not None or settings.database_url is not None:
        return settings
    if settings.env != "dev":
        variable = "RCM_CONTROL_DATABASE_URL" if control else "RCM_APP_DATABASE_URL"
        raise SettingError(variable, "is not set (nor RCM_DATABASE_URL, from which it can be derived)")
    admin_url(settings)
    return get_settings()


def app_password(settings: Settings) -> str | None:
    return settings.app_database_password.get_secret_value() if settings.app_database_password else None


def control_password(settings: Settings) -> str | None:
    secret = settings.control_database_password
    return secret.get_secret_value() if secret else None

"""API and worker processes run on the app (+ control, for the API) credentials, never the admin URL."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner
from litestar.testing import AsyncTestClient
from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.app import create_app
from rcm.cli import main
from rcm.config import (
    APP_ROLE,
    CONTROL_ROLE,
    Settings,
    app_url_from_admin,
    control_database_url,
    get_settings,
)
from rcm.identity.principal import Role
from rcm.identity.testing import mint_access_token, user_principal
from tests.identity.conftest import make_user


def _role_only(settings: Settings) -> Settings:
    """The tests' deployment as an API pod sees it: two role URLs and no administrative URL."""
    admin = settings.database_url
    assert admin is not None
    return settings.model_copy(
        update={
            "database_url": None,
            "app_database_url": SecretStr(app_url_from_admin(admin.get_secret_value(), None, role=APP_ROLE)),
            "control_database_url": SecretStr(
                app_url_from_admin(admin.get_secret_value(), None, role=CONTROL_ROLE)
            ),
        }
    )


async def test_the_api_serves_without_the_admin_url(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    pod = _role_only(settings)
    assert make_url(control_database_url(pod)).username == CONTROL_ROLE
    token = await mint_access_token(user_principal(Role.ADMIN, mfa=True), sessions=sessions, settings=pod)
    person = await make_user(control_sessions, ["biller"])
    async with AsyncTestClient(app=create_app(pod)) as client:
        assert (await client.get("/readyz")).status_code == 200
        # An admin route writes through the control role's own pool.
        response = await client.put(
            f"/api/v1/admin/people/{person.id}/active",
            json={"active": True},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("command", "variable"),
    [(["serve"], "RCM_APP_DATABASE_URL"), (["worker"], "RCM_APP_DATABASE_URL")],
)
async def test_serve_and_worker_name_the_missing_role_url(command: list[str], variable: str) -> None:
    get_settings.cache_clear()
    unset = None  # CliRunner removes a variable whose value is None
    env = {
        "RCM_ENV": "prod",
        "RCM_DATABASE_URL": unset,
        "RCM_APP_DATABASE_URL": unset,
        "RCM_CONTROL_DATABASE_URL": unset,
    }
    try:
        result = await asyncio.to_thread(CliRunner().invoke, main, command, env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert variable in result.output
    assert "Traceback" not in result.output


async def test_serve_needs_the_control_url_too() -> None:
    get_settings.cache_clear()
    env = {
        "RCM_ENV": "prod",
        "RCM_DATABASE_URL": None,
        "RCM_APP_DATABASE_URL": "postgresql://rcm_app@127.0.0.1:1/none",
        "RCM_CONTROL_DATABASE_URL": None,
    }
    try:
        result = await asyncio.to_thread(CliRunner().invoke, main, ["serve"], env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert "RCM_CONTROL_DATABASE_URL" in result.output

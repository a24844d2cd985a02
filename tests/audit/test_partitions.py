"""Monthly audit partitions are made ahead of the clock by every ``rcm migrate``, not only by the CronJob."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.audit.partitions import ensure_partitions, months_around
from rcm.cli import main
from rcm.config import Settings, get_settings
from rcm.kit.db import platform_transaction
from rcm.kit.models import utcnow


def _name(month: datetime) -> str:
    return f"audit_event_p{month:%Y%m}"


async def _protected_partitions(owner_engine: AsyncEngine, names: list[str]) -> dict[str, tuple[bool, bool]]:
    """name -> (row security forced, TRUNCATE refused) for those of ``names`` attached to rcm.audit_event."""
    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT c.relname, c.relrowsecurity AND c.relforcerowsecurity, "
                "  EXISTS (SELECT 1 FROM pg_trigger t "
                "          WHERE t.tgrelid = c.oid AND t.tgname = 'audit_no_truncate') "
                "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'rcm.audit_event'::regclass AND c.relname = ANY(:names)"
            ),
            {"names": names},
        )
        return {name: (rls, no_truncate) for name, rls, no_truncate in rows}


def test_months_are_calendar_months_around_now() -> None:
    months = months_around(datetime(2031, 1, 31, 23, 30, tzinfo=UTC))
    # From 31 January, "31 days later" would jump to March: every month is there.
    assert [f"{m:%Y-%m}" for m in months] == ["2030-12", "2031-01", "2031-02", "2031-03", "2031-04"]
    assert all((m.day, m.hour, m.tzinfo) == (1, 0, UTC) for m in months)


async def test_ensure_partitions_creates_protected_months(
    audit_sessions: async_sessionmaker[AsyncSession], owner_engine: AsyncEngine
) -> None:
    now = datetime(2031, 1, 31, 12, tzinfo=UTC)
    # The app role can do it (SECURITY DEFINER function), which is how the CronJob runs.
    # Only the chainer's role (and migrations) may create partitions.
    async with platform_transaction(audit_sessions) as session:
        made = await ensure_partitions(session, now=now)
    expected = [_name(m) for m in months_around(now)]
    assert made == expected
    assert await _protected_partitions(owner_engine, expected) == dict.fromkeys(expected, (True, True))
    async with platform_transaction(audit_sessions) as session:
        assert await ensure_partitions(session, now=now) == expected  # idempotent


@pytest.fixture
def migrate_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    assert settings.database_url is not None
    monkeypatch.setenv("RCM_DATABASE_URL", settings.database_url.get_secret_value())
    monkeypatch.setenv("RCM_ENV", "test")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("migrate_env")
async def test_rcm_migrate_at_head_still_renews_partitions(owner_engine: AsyncEngine) -> None:
    """A database already at head (nothing to migrate) whose furthest month is missing, as after three
    months without a checkpoint run: the next release's ``rcm migrate`` creates it."""
    furthest = _name(months_around(utcnow())[-1])
    async with owner_engine.connect() as conn:
        count = await conn.execute(text(f"SELECT count(*) FROM rcm.{furthest}"))  # noqa: S608 - our name
        assert count.scalar_one() == 0
        await conn.execute(text(f"DROP TABLE rcm.{furthest}"))
        await conn.commit()
    assert await _protected_partitions(owner_engine, [furthest]) == {}

    result = await asyncio.to_thread(CliRunner().invoke, main, ["migrate"])
    assert result.exit_code == 0, result.output
    assert await _protected_partitions(owner_engine, [furthest]) == {furthest: (True, True)}

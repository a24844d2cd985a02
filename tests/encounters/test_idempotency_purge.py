from __future__ import annotations

import asyncio
import uuid

from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from rcm.cli import main
from rcm.config import get_settings
from tests.support import Api, encounter_payload


async def test_purge_forgets_old_keys_only(
    practice_api: Api, owner_engine: AsyncEngine, admin_url: str
) -> None:
    tenant_id = uuid.UUID(practice_api.tenant_id)
    old_key, new_key = uuid.uuid4().hex, uuid.uuid4().hex
    old = encounter_payload()
    assert (await practice_api.post("/encounters", old, key=old_key)).status_code == 201
    assert (await practice_api.post("/encounters", encounter_payload(), key=new_key)).status_code == 201
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE rcm.idempotency_record SET created_at = now() - interval '4 days' WHERE key = :k"),
            {"k": old_key},
        )
    get_settings.cache_clear()
    env = {"RCM_DATABASE_URL": admin_url, "RCM_ENV": "test"}
    result = await asyncio.to_thread(CliRunner().invoke, main, ["idempotency", "purge"], env=env)
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "purged 1 idempotency record(s)" in result.output
    async with owner_engine.connect() as conn:
        keys = (
            (
                await conn.execute(
                    text("SELECT key FROM rcm.idempotency_record WHERE tenant_id = :t"), {"t": tenant_id}
                )
            )
            .scalars()
            .all()
        )
    assert keys == [new_key]
    # The forgotten key is free again: the same request is now a new (refused, duplicate) create.
    again = await practice_api.post("/encounters", old, key=old_key)
    assert again.status_code == 409

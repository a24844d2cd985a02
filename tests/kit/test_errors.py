"""The safety net under the schemas: database refusals become 4xx without echoing values."""

from __future__ import annotations

from litestar import Litestar, post
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.kit.errors import EXCEPTION_HANDLERS


async def test_data_and_integrity_errors_are_4xx_without_values(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    @post("/nul", status_code=200, opt={"public": True})
    async def nul() -> None:
        async with sessions() as session:
            await session.execute(text("SELECT CAST(:v AS text)"), {"v": "secret\x00value"})

    @post("/dup", status_code=200, opt={"public": True})
    async def dup() -> None:
        async with sessions() as session:
            await session.execute(
                text("SELECT 1 FROM (VALUES ('secret-key'), ('secret-key')) v(k) GROUP BY k")
            )
            await session.execute(
                text(
                    "CREATE TEMP TABLE u (k text PRIMARY KEY); INSERT INTO u VALUES ('secret-key'), ('secret-key')"
                )
            )

    app = Litestar([nul, dup], exception_handlers=EXCEPTION_HANDLERS)
    async with AsyncTestClient(app=app) as client:
        refused = await client.post("/nul")
        conflict = await client.post("/dup")
    assert refused.status_code == 422
    assert refused.json()["title"] == "Invalid input"
    assert conflict.status_code == 409
    for response in (refused, conflict):
        assert "secret" not in response.text

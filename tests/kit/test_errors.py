"""The safety net under the schemas: database refusals become 4xx without echoing values."""

from __future__ import annotations

from litestar import Litestar, post
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from rcm.config import async_url
from rcm.kit.errors import EXCEPTION_HANDLERS


async def test_data_and_integrity_errors_are_4xx_without_values(admin_url: str) -> None:
    # The handlers run on the test client's event loop: they open their own connections there.
    async def run(*statements: str, value: str | None = None) -> None:
        engine = create_async_engine(async_url(admin_url), poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                for statement in statements:
                    await conn.execute(text(statement), {"v": value} if ":v" in statement else {})
        finally:
            await engine.dispose()

    @post("/nul", status_code=200, opt={"public": True})
    async def nul() -> None:
        await run("SELECT CAST(:v AS text)", value="secret\x00value")

    @post("/dup", status_code=200, opt={"public": True})
    async def dup() -> None:
        await run(
            "CREATE TEMP TABLE u (k text PRIMARY KEY)", "INSERT INTO u VALUES ('secret-key'), ('secret-key')"
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

"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.datastructures import State
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from rcm.kit.errors import ServiceUnavailable
from rcm.kit.migrations import head_revision
from rcm.kit.package_data import PackageDataMissing
from rcm.kit.windows import WINDOWS_STATE_KEY, Windows


class HealthController(Controller):
    path = ""
    tags = ["health"]
    opt = {"public": True}

    @get("/healthz", summary="The process is up")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", summary="The database answers and its schema is at the migrations' head")
    async def readyz(self, state: State) -> dict[str, Any]:
        try:
            async with state.sessions() as session:
                current = (
                    await session.execute(text("SELECT version_num FROM rcm.alembic_version"))
                ).scalar()
        except (SQLAlchemyError, OSError) as exc:
            raise ServiceUnavailable("The database is not reachable.") from exc
        try:
            head = head_revision()
        except PackageDataMissing as exc:
            # Without its migrations an installation cannot tell whether the schema fits: not ready, no 500.
            raise ServiceUnavailable("This installation does not carry its database migrations.") from exc
        if current != head:
            raise ServiceUnavailable(f"The database schema is at {current}, the code expects {head}.")
        # Rate limits fail open when Redis is down (an outage of the limiter must not take the API with it),
        # so an unreachable Redis does not make the replica unready; it is reported for monitoring to see.
        windows: Windows | None = state.get(WINDOWS_STATE_KEY)
        rate_limits = await windows.health() if windows is not None else "off"
        return {"status": "ready", "schema": current, "rate_limit_store": rate_limits}

"""What a job needs from its process: settings and database sessions (app role, so RLS applies).

Async jobs run on the event loop of dramatiq's AsyncIO middleware (a thread of its own); an asyncpg engine
belongs to the loop it was created on, so the context keeps one engine per event loop.
"""

from __future__ import annotations

import asyncio
import threading

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.kit.db import create_engine, session_factory


class JobContext:
    def __init__(
        self, settings: Settings, *, sessions: async_sessionmaker[AsyncSession] | None = None
    ) -> None:
        self.settings = settings
        self._fixed = sessions
        self._engines: dict[
            asyncio.AbstractEventLoop, tuple[AsyncEngine, async_sessionmaker[AsyncSession]]
        ] = {}
        self._lock = threading.Lock()

    def sessions(self) -> async_sessionmaker[AsyncSession]:
        if self._fixed is not None:
            return self._fixed
        loop = asyncio.get_running_loop()
        with self._lock:
            found = self._engines.get(loop)
            if found is None:
                from rcm.config import app_database_url

                engine = create_engine(
                    app_database_url(self.settings),
                    pool_size=self.settings.db_pool_size,
                    application_name="rcm-worker",
                )
                found = (engine, session_factory(engine))
                self._engines[loop] = found
            return found[1]

    async def dispose(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            found = self._engines.pop(loop, None)
        if found is not None:
            await found[0].dispose()


_context: JobContext | None = None


def configure_jobs(
    settings: Settings, *, sessions: async_sessionmaker[AsyncSession] | None = None
) -> JobContext:
    """Set the process's job context (the worker CLI, ``rcm dev`` and tests call it)."""
    global _context  # noqa: PLW0603 - one job context per process, like the broker
    _context = JobContext(settings, sessions=sessions)
    return _context


def job_context() -> JobContext:
    if _context is None:
        from rcm.config import get_settings

        return configure_jobs(get_settings())
    return _context

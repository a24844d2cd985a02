"""``/api/v1/codes``: coders, billers, supervisors and practice systems look codes up and search them.

Code sets are reference data, the same for every practice and free of PHI: the routes are authenticated
(a token with ``encounters:read``, which staff and practice systems carry) but record no audit event.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.codes import schemas, service
from rcm.identity.guards import requires_scopes
from rcm.identity.scopes import ENCOUNTERS_READ
from rcm.kit.db import platform_transaction
from rcm.kit.errors import problem_responses
from rcm.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT

On = Annotated[
    datetime.date | None,
    QueryParameter(description="Date of service, YYYY-MM-DD (default: today, UTC)"),
]
Query = Annotated[str, QueryParameter(min_length=1, max_length=200, description="Words or a code (prefix)")]
Limit = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT, description="Page size")]
Cursor = Annotated[
    str | None,
    QueryParameter(max_length=20, description="Opaque cursor from the previous page's next_cursor"),
]


async def provide_reference_session(request: Request[Any, Any, Any]) -> AsyncIterator[AsyncSession]:
    """A read transaction with no practice bound: code tables are global."""
    async with platform_transaction(request.app.state.sessions) as session:
        yield session


def _today() -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date()


class CodeController(Controller):
    path = "/api/v1/codes"
    tags = ["codes"]
    dependencies = {"reference": Provide(provide_reference_session)}
    guards = [requires_scopes(ENCOUNTERS_READ)]

    @get(
        "/{system:str}/{code:str}",
        responses=problem_responses(),
        summary="Look a code up: valid on the date of service, its description, why not",
    )
    async def lookup(
        self,
        reference: NamedDependency[AsyncSession],
        system: FromPath[str],
        code: FromPath[str],
        on: On = None,
    ) -> schemas.CodeLookup:
        return await service.lookup(reference, service.code_system(system), code, on or _today())

    @get(
        "/{system:str}",
        responses=problem_responses(),
        summary="Search a code system by description words or code prefix (ranked)",
    )
    async def search(
        self,
        *,
        reference: NamedDependency[AsyncSession],
        system: FromPath[str],
        q: Query,
        on: On = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> schemas.CodePage:
        return await service.search(
            reference, service.code_system(system), q=q, on=on or _today(), limit=limit, cursor=cursor
        )

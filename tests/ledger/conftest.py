"""The claims tests' practices, intake and claim builder, for the ledger's tests; and a payment held on
arrival, for the review tests (``tests.ledger.support``)."""

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.tenancy.models import Tenant
from tests.claims.conftest import (  # noqa: F401 - fixtures
    Claims,
    claims,
    intake,
    make_staff,
    other_intake,
    other_practice,
    payer_directory,
    practice,
)
from tests.ledger.support import HoldPayment
from tests.support import Api


@pytest.fixture
def hold(
    *,
    claims: Claims,  # noqa: F811 - the fixture imported above
    intake: Api,  # noqa: F811
    practice: Tenant,  # noqa: F811
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> HoldPayment:
    return HoldPayment(
        claims=claims,
        intake=intake,
        practice=practice,
        sessions=sessions,
        settings=settings,
        owner_engine=owner_engine,
    )

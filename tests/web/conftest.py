from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.identity.conftest import audit_log, mint

__all__ = ["audit_log", "mint"]


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A client that shows each redirect (the login flow is a chain of them) instead of following it."""
    async with AsyncTestClient(app=app) as test_client:
        test_client.follow_redirects = False
        yield test_client

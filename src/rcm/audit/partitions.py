"""Monthly partitions of the access log, made ahead of time.

An event whose month has no partition lands in the DEFAULT partition, and once that holds rows of a month,
the month can no longer get a partition of its own (``audit_ensure_partition`` then leaves it there). Two
paths keep partitions ahead of the clock, so neither depends on the other having run: every ``rcm migrate``
(the Alembic environment calls ``ensure_partitions`` after upgrading, i.e. on each release) and the audit
chainer's periodic job in the worker (hourly; ``rcm audit checkpoint`` does it too).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from rcm.audit import repository
from rcm.kit.models import utcnow

MONTHS_BEHIND = 1  # late writers: a request that started before midnight UTC on the 1st
MONTHS_AHEAD = 3  # a release or the worker's job in the next quarter renews them


def months_around(now: datetime, *, behind: int = MONTHS_BEHIND, ahead: int = MONTHS_AHEAD) -> list[datetime]:
    """The first instant (UTC) of each month from ``behind`` months before ``now`` to ``ahead`` after.

    Calendar arithmetic, not "31 days later": from 31 January a fixed step of days would skip February.
    """
    start = now.astimezone(UTC)
    index = start.year * 12 + start.month - 1
    return [
        datetime((i // 12), (i % 12) + 1, 1, tzinfo=UTC) for i in range(index - behind, index + ahead + 1)
    ]


async def ensure_partitions(
    session: AsyncSession | AsyncConnection, *, now: datetime | None = None
) -> list[str | None]:
    """Create the missing monthly partitions around ``now`` (default: the current time); returns each
    month's partition name, None for a month the DEFAULT partition already holds rows of. Safe to repeat."""
    return [await repository.ensure_partition(session, month) for month in months_around(now or utcnow())]

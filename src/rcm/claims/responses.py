"""Fetching what payers answered: per practice and claims connector endpoint of its enrolled payers, the
files newer than the cursor kept (``rcm.interchanges.keep``: encrypted, once per content), the cursor moved,
the files acknowledged to the connector after that commit, then every kept 999/277CA/835 of the practice
applied (``acknowledgments.apply_file``), each in its own transaction.

At least once, safely: a file fetched again (the acknowledgment was lost, the cursor did not move) is the
same row, already applied; a crash between keeping and applying leaves the file ``kept``, and the next run
applies it. One endpoint failing (a connector error: its message is PHI-free by contract) is reported and
the others still fetched.

Run by the worker (``claims.fetch_responses`` per practice, queued every few minutes by the scheduler) and by
the operator (``rcm claims fetch [SLUG...]``).
"""

from __future__ import annotations

import logging
import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import RequestInfo
from rcm.blobs.store import BlobStore
from rcm.claims.acknowledgments import APPLIED_KINDS, apply_file
from rcm.claims.applying import Outcome
from rcm.crypto.keyring import KeyStore
from rcm.identity.principal import Principal
from rcm.interchanges import service as files
from rcm.interchanges.models import Direction
from rcm.interchanges.repository import ResponseCursorRepository, X12FileRepository
from rcm.kit.secrets import SecretResolver
from rcm.kit.tenant import TenantId
from rcm.payers.connector import ConnectorConfig, ConnectorError, InboundFile
from rcm.payers.registry import build_config, open_connector
from rcm.payers.repository import EnrollmentRepository, directory_payers
from rcm.tenancy.jobs import job_tenant_scope
from rcm.tenancy.scope import TenantScope

logger = logging.getLogger(__name__)
JOB = "claims.fetch_responses"
# Files applied per run: a backlog larger than this is finished by the next runs.
APPLY_LIMIT = 1000


@dataclass
class FetchReport:
    """What one practice's fetch did: counts and the connectors' errors (PHI-free), no content."""

    endpoints: int = 0
    fetched: int = 0
    new: int = 0
    skipped: int = 0  # addressed to another submitter: left at the far side
    outcomes: list[Outcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        applied = [o for o in self.outcomes if not o.already]
        refused = sum(1 for o in applied if o.error)
        unmatched = sum(o.unmatched for o in applied)
        posted = sum(o.posted for o in applied)
        held = sum(o.held for o in applied)
        repeated = sum(o.duplicates for o in applied)
        return (
            f"{self.endpoints} endpoint(s), {self.fetched} file(s) fetched, {self.new} new, "
            f"{self.skipped} for other submitters, "
            f"{len(applied)} applied, {refused} refused, {unmatched} unmatched claim(s), "
            f"{posted} payment(s) posted, {held} held, {repeated} duplicate(s)"
            + (f", errors: {'; '.join(self.errors)}" if self.errors else "")
        )


@dataclass(frozen=True, slots=True)
class Practice:
    """How to open a practice's unit of work (one transaction each) for this job."""

    sessions: async_sessionmaker[AsyncSession]
    keystore: KeyStore
    tenant_id: TenantId
    actor: Principal
    request: RequestInfo

    def scope(self) -> AbstractAsyncContextManager[TenantScope]:
        return job_tenant_scope(
            self.sessions, self.keystore, self.tenant_id, actor=self.actor, request=self.request, job=JOB
        )


@dataclass
class Mailbox:
    """One claims endpoint of the practice's enrolled payers, opened with the first enrollment's ids and
    credentials, and every submitter id the practice sends under to it (its answers come back to those)."""

    endpoint: str
    config: ConnectorConfig
    submitters: set[str]


async def mailboxes(scope: TenantScope, resolver: SecretResolver) -> list[Mailbox]:
    """The practice's claims endpoints: payers sharing a clearinghouse mailbox share one fetch."""
    enrollments = await scope.repo(EnrollmentRepository).listed()
    payers = await directory_payers(scope.session, {e.payer_id for e in enrollments})
    found: dict[tuple[str, str], Mailbox] = {}
    for enrollment in enrollments:
        payer = payers.get(enrollment.payer_id)
        if payer is None or not payer.claims_connector or not payer.claims_endpoint:
            continue
        key = (payer.claims_connector, payer.claims_endpoint)
        if key not in found:
            config = build_config(
                connector=payer.claims_connector,
                endpoint=payer.claims_endpoint,
                submitter_id=enrollment.submitter_id,
                receiver_id=enrollment.receiver_id,
                credentials_reference=enrollment.credentials_reference,
                resolver=resolver,
            )
            found[key] = Mailbox(payer.claims_endpoint, config, set())
        found[key].submitters.add(enrollment.submitter_id)
    return list(found.values())


def addressee(content: bytes) -> str | None:
    """ISA08 (the interchange receiver) read from the fixed-width ISA by its own element separator; None
    when the file does not start as X12 (it is kept all the same: what a payer sent is evidence)."""
    if len(content) < 106 or not content.startswith(b"ISA"):
        return None
    elements = content[:106].split(content[3:4])
    if len(elements) <= 8:
        return None
    return elements[8].decode("ascii", "replace").strip() or None


async def fetch_practice(practice: Practice, store: BlobStore, resolver: SecretResolver) -> FetchReport:
    report = FetchReport()
    async with practice.scope() as scope:
        try:
            found = await mailboxes(scope, resolver)
        except ConnectorError as exc:
            report.errors.append(str(exc))
            found = []
    for mailbox in found:
        report.endpoints += 1
        try:
            await _fetch_endpoint(practice, store, mailbox, report)
        except ConnectorError as exc:
            logger.warning("response fetch failed: %s", exc)
            report.errors.append(str(exc))
    report.outcomes = await apply_kept(practice, store)
    return report


async def _fetch_endpoint(
    practice: Practice, store: BlobStore, mailbox: Mailbox, report: FetchReport
) -> None:
    """One endpoint: fetch after the practice's cursor, keep the files addressed to the practice's
    submitter ids and move the cursor in one transaction, then acknowledge those files to the far side.

    A file addressed to another submitter (a mailbox several practices of the billing company share) is
    neither kept nor acknowledged: it stays there for the practice it answers."""
    connector_name, endpoint = mailbox.config.connector, mailbox.endpoint
    connector = open_connector(mailbox.config)
    try:
        async with practice.scope() as scope:
            cursor = await scope.repo(ResponseCursorRepository).cursor(connector_name, endpoint)
        page = await connector.fetch_responses(cursor)
        fetched: list[InboundFile] = []
        for inbound in page.files:
            to = addressee(inbound.content)
            if to is not None and to not in mailbox.submitters:
                report.skipped += 1
                continue
            fetched.append(inbound)
        async with practice.scope() as scope:
            for inbound in fetched:
                _, new = await files.keep(
                    scope, store, inbound.content, direction=Direction.INBOUND, connector=connector_name
                )
                report.new += int(new)
            await scope.repo(ResponseCursorRepository).advance(connector_name, endpoint, page.cursor)
        report.fetched += len(fetched)
        # Only once the files are committed may the far side forget them.
        for inbound in fetched:
            await connector.acknowledge(inbound)
    finally:
        await connector.aclose()


async def apply_kept(practice: Practice, store: BlobStore, *, limit: int = APPLY_LIMIT) -> list[Outcome]:
    """Apply every kept 999/277CA/835 of the practice (oldest first), one transaction per file: a file
    that fails to apply rolls back alone and stays ``kept`` for the next run."""
    async with practice.scope() as scope:
        pending = await scope.repo(X12FileRepository).unprocessed(
            direction=Direction.INBOUND, limit=limit, kinds=APPLIED_KINDS
        )
    outcomes = []
    for row in pending:
        outcomes.append(await apply_one(practice, store, row.id))
    return outcomes


async def apply_one(practice: Practice, store: BlobStore, file_id: uuid.UUID) -> Outcome:
    async with practice.scope() as scope:
        return await apply_file(scope, store, file_id)

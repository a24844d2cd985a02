"""Payer responses applied to claims, end to end through the sandbox payer: an 837 written by our writer is
submitted through the connector the payer directory names, then ``rcm claims fetch``'s job fetches the 999,
277CA and 835 answers, keeps them and applies them: rejections land in the billing queue with the payer's
codes in words, acceptances record the payer's claim control number, the 835 adjudicates. Applying again
changes nothing; claims the practice does not have are counted, another practice's claims never touched."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.audit.events import RequestInfo
from rcm.blobs.store import BlobStore
from rcm.claims.models import BatchStatus, SubmissionBatch
from rcm.claims.repository import ClaimRepository
from rcm.claims.responses import Practice, apply_one, fetch_practice
from rcm.claims.states import ClaimState
from rcm.config import Settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.identity.principal import system_principal
from rcm.interchanges import service as files
from rcm.interchanges.models import Direction, FileStatus
from rcm.kit.secrets import SecretResolver
from rcm.kit.tenant import TenantId
from rcm.payers.connector import Connector, Submission
from rcm.payers.registry import build_config, open_connector
from rcm.payers.repository import upsert_payers
from rcm.tenancy.models import Tenant
from rcm.tenancy.vocabulary import ClaimType
from rcm.x12.claims import SubscriberLoop
from rcm.x12.claims837 import write_837
from sandbox_payer.payer import payer_claim_control_number
from sandbox_payer.rules import Outcome, Rule, Rules, When, write_rules
from tests.claims.conftest import Claims, enrolled_practice, practice_scope, rows
from tests.conftest import practice_api_for
from tests.support import Cli
from tests.x12 import claimdata as data

EVENTS = "SELECT 1 FROM rcm.claim_event WHERE tenant_id = :t AND x12_file_id IS NOT NULL"
PROVIDER_NPI = data.billing_provider(()).npi
# The sandbox payer's mind, by the charge of the 837 we send it (the claim rows' own charges do not matter).
REJECT_999, REJECT_277, PAY, PARTIAL, DENY = 5_000_000, 5_000, 15_000, 25_000, 35_000
RULES = Rules(
    claims=(
        Rule(outcome=Outcome.REJECT_999, when=When(charge_at_least=REJECT_999)),
        Rule(
            outcome=Outcome.REJECT_277CA,
            when=When(charge_below=10_000),
            status_code="562",
            message="NPI NOT ON FILE",
        ),
        Rule(outcome=Outcome.PARTIAL, when=When(charge_at_least=20_000, charge_below=30_000)),
        Rule(outcome=Outcome.DENY, when=When(charge_at_least=30_000, charge_below=40_000), carc="50"),
        Rule(outcome=Outcome.PAY),
    )
)


@pytest.fixture(autouse=True)
def _sandbox_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RCM_ENV", "test")


@dataclass
class Setup:
    practice: Tenant
    other: Tenant
    payer_id: str
    directory: Path
    api: Any
    other_api: Any


@pytest.fixture
async def setup(
    *,
    tmp_path: Path,
    owner_engine: AsyncEngine,
    control_sessions: async_sessionmaker[AsyncSession],
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> Setup:
    """A payer of its own in the directory, whose claims endpoint is a sandbox payer in ``tmp_path`` (the
    shipped demo payers share one sandbox mailbox), and two practices enrolled with it."""
    payer_id = f"ACK{uuid.uuid4().hex[:8].upper()}"
    directory = tmp_path / "payer"
    async with AsyncSession(owner_engine) as session, session.begin():
        await upsert_payers(
            session,
            [
                {
                    "id": payer_id,
                    "name": "Acknowledging payer",
                    "claim_filing_indicator": "CI",
                    "claims_connector": "sandbox",
                    "claims_endpoint": f"sandbox:{directory}",
                    "eligibility_connector": None,
                    "eligibility_endpoint": None,
                    "status_connector": None,
                    "status_endpoint": None,
                    "status_inquiry_days": 30,
                    "timely_filing_days": 365,
                    "updated_at": data.WHEN,
                }
            ],
        )
    write_rules(directory, RULES)
    # Both practices share the payer's mailbox; the payer answers each submitter id (ISA08) its own files.
    payer = {"payer_id": payer_id, "name": "Acknowledging payer"}
    practice = await enrolled_practice(
        control_sessions, "acks", payers=[{**payer, "submitter_id": "SUBMITTER01"}]
    )
    other = await enrolled_practice(
        control_sessions, "acks-other", payers=[{**payer, "submitter_id": "OTHERSUB01"}]
    )
    return Setup(
        practice,
        other,
        payer_id,
        directory,
        await practice_api_for(client, practice, sessions, settings),
        await practice_api_for(client, other, sessions, settings),
    )


async def _submitted(claims: Claims, api: Any, tenant: Tenant, payer_id: str) -> tuple[uuid.UUID, str]:
    claim_id = await claims.new(api, tenant, payer_id=payer_id)
    await claims.walk(tenant, claim_id, ClaimState.SUBMITTED)
    async with practice_scope(claims.sessions, claims.settings, tenant) as scope:
        claim = await scope.repo(ClaimRepository).get(claim_id)
    assert claim is not None
    return claim_id, claim.patient_control_number


async def _batch(
    claims: Claims, tenant: Tenant, payer_id: str, control: int, claim_ids: list[uuid.UUID]
) -> uuid.UUID:
    """The practice's batch under the 837's envelope numbers (as the batcher records them)."""
    batch = SubmissionBatch(
        id=uuid.uuid4(),
        tenant_id=tenant.id,
        payer_id=payer_id,
        connector="sandbox",
        sender_id="SUBMITTER01",
        receiver_id="CLEARINGHOUSE",
        interchange_control_number=control,
        group_control_number=control,
        transaction_set_control_number="0001",  # one ST per interchange
        claim_count=len(claim_ids),
        status=BatchStatus.SENT,
        attempts=1,
        next_attempt_at=datetime.now(UTC),
        claim_type=ClaimType.PROFESSIONAL,
    )
    async with practice_scope(claims.sessions, claims.settings, tenant) as scope:
        await scope.repo(ClaimRepository).attach(batch, claim_ids)
    return batch.id


def _connector(setup: Setup) -> Connector:
    """The sandbox payer as the registry opens it for the directory's endpoint."""
    return open_connector(
        build_config(
            connector="sandbox",
            endpoint=f"sandbox:{setup.directory}",
            submitter_id="SUBMITTER01",
            receiver_id="CLEARINGHOUSE",
            credentials_reference=None,
            resolver=SecretResolver(None),
        )
    )


async def _submit(setup: Setup, control: int, charges: dict[str, int]) -> None:
    """Our 837 (our writer) of the given CLM01s and charges, through the connector the directory names."""
    loop = SubscriberLoop(
        payer=data.AETNA,
        subscriber=data.SUBSCRIBER,
        claims=tuple(data.claim(pcn, (data.line(charge),)) for pcn, charge in charges.items()),
    )
    x12 = write_837(data.batch(data.billing_provider((loop,)), control=control)).encode()
    connector = _connector(setup)
    await connector.submit(Submission(f"claims-{control:09d}.x12", f"{control:09d}", x12))
    await connector.aclose()


def _practice(sessions: async_sessionmaker[AsyncSession], settings: Settings, tenant: Tenant) -> Practice:
    return Practice(
        sessions=sessions,
        keystore=KeyStore(key_provider(settings)),
        tenant_id=TenantId(tenant.id),
        actor=system_principal("claims.fetch_responses"),
        request=RequestInfo(request_id="acks-test", trace_id=""),
    )


async def _states(owner_engine: AsyncEngine, tenant: Tenant) -> dict[uuid.UUID, tuple[str, str | None]]:
    found = await rows(
        owner_engine,
        "SELECT id, state, payer_claim_control_number FROM rcm.claim WHERE tenant_id = :t",
        t=tenant.id,
    )
    return {r.id: (r.state, r.payer_claim_control_number) for r in found}


async def test_the_payers_answers_move_claims_once_and_only_the_practices(
    setup: Setup,
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    payer_id = setup.payer_id
    rejected, rejected_pcn = await _submitted(claims, setup.api, setup.practice, payer_id)
    paid, paid_pcn = await _submitted(claims, setup.api, setup.practice, payer_id)
    partial, partial_pcn = await _submitted(claims, setup.api, setup.practice, payer_id)
    denied, denied_pcn = await _submitted(claims, setup.api, setup.practice, payer_id)
    theirs, theirs_pcn = await _submitted(claims, setup.other_api, setup.other, payer_id)
    await _batch(claims, setup.practice, payer_id, 7, [rejected, paid, partial, denied])
    charges = {
        rejected_pcn: REJECT_277,
        paid_pcn: PAY,
        partial_pcn: PARTIAL,
        denied_pcn: DENY,
        theirs_pcn: PAY,  # another practice's claim number: nothing of this practice's
        "ZZNOSUCHCLAIM1": PAY,
    }
    await _submit(setup, 7, charges)

    store, resolver = BlobStore(), SecretResolver(None)
    # The other practice fetches from the same mailbox first: nothing there is addressed to it, and it
    # leaves everything (unacknowledged) for the practice the files answer.
    elsewhere = await fetch_practice(_practice(sessions, settings, setup.other), store, resolver)
    assert (elsewhere.fetched, elsewhere.skipped, elsewhere.outcomes) == (0, 3, [])
    report = await fetch_practice(_practice(sessions, settings, setup.practice), store, resolver)
    assert report.errors == []
    assert (report.endpoints, report.fetched, report.new) == (1, 3, 3)
    by_kind = {o.kind: o for o in report.outcomes}
    assert sorted(by_kind) == ["277CA", "835", "999"]
    assert all(o.status is FileStatus.PROCESSED for o in report.outcomes)
    assert by_kind["999"].batch_id is not None  # linked to the batch it acknowledged; nothing moved
    assert (by_kind["999"].accepted, by_kind["999"].rejected) == (0, 0)
    assert (by_kind["277CA"].accepted, by_kind["277CA"].rejected, by_kind["277CA"].unmatched) == (3, 1, 2)
    assert by_kind["277CA"].items == 1
    remit = by_kind["835"]
    assert (remit.paid, remit.partially_paid, remit.denied, remit.unmatched) == (1, 1, 1, 2)

    states = await _states(owner_engine, setup.practice)
    assert states[rejected] == ("rejected", None)
    assert states[paid] == ("paid", payer_claim_control_number(PROVIDER_NPI, paid_pcn))
    assert states[partial] == ("partially_paid", payer_claim_control_number(PROVIDER_NPI, partial_pcn))
    assert states[denied] == ("denied", payer_claim_control_number(PROVIDER_NPI, denied_pcn))
    assert (await _states(owner_engine, setup.other))[theirs] == ("submitted", None)

    # The rejection: a billing-queue item, and the event naming the file and the STC codes in words. The
    # denial (CO-50) has its own item (rcm.denials); the partial payment's CO-45 is no denial.
    items = await rows(
        owner_engine,
        "SELECT subject_id, reason, status FROM rcm.work_item WHERE tenant_id = :t AND kind = 'billing'",
        t=setup.practice.id,
    )
    assert sorted((i.reason, i.subject_id, i.status) for i in items) == [
        ("denial", denied, "open"),
        ("rejection", rejected, "open"),
    ]
    events = await rows(
        owner_engine,
        "SELECT e.claim_id, e.to_state, e.cause, e.reason, e.payer_claim_control_number, f.kind"
        " FROM rcm.claim_event e JOIN rcm.x12_file f ON (f.tenant_id, f.id) = (e.tenant_id, e.x12_file_id)"
        " WHERE e.tenant_id = :t ORDER BY e.created_at",
        t=setup.practice.id,
    )
    moves = {(e.claim_id, e.to_state): e for e in events}
    rejection = moves[(rejected, "rejected")]
    assert rejection.kind == "277CA"
    assert rejection.cause == "acknowledgment"
    assert "A7 Acknowledgement/Rejected for invalid information" in rejection.reason
    assert "562 Entity's National Provider Identifier (NPI)" in rejection.reason
    assert "NPI NOT ON FILE" not in rejection.reason  # the payer's free text (STC12) is not kept
    assert moves[(paid, "accepted")].kind == "277CA"
    assert moves[(paid, "accepted")].payer_claim_control_number == payer_claim_control_number(
        PROVIDER_NPI, paid_pcn
    )
    assert moves[(paid, "paid")].kind == "835"
    assert moves[(paid, "paid")].cause == "remittance"
    assert moves[(partial, "partially_paid")].reason.startswith("835 CLP02 1; CO-45")
    assert "CO-50" in moves[(denied, "denied")].reason
    audited = await rows(
        owner_engine,
        "SELECT count(*) AS n FROM rcm.audit_event"
        " WHERE tenant_id = :t AND event_type = 'claim.response_applied'",
        t=setup.practice.id,
    )
    assert audited[0].n == 3

    assert len(await rows(owner_engine, EVENTS, t=setup.practice.id)) == len(events)
    # Again: nothing new to fetch, and each file applied again changes nothing.
    again = await fetch_practice(_practice(sessions, settings, setup.practice), store, resolver)
    assert (again.fetched, again.new, again.outcomes) == (0, 0, [])
    for outcome in report.outcomes:
        repeat = await apply_one(_practice(sessions, settings, setup.practice), store, outcome.file_id)
        assert repeat.already
        assert repeat.status is FileStatus.PROCESSED
    assert await _states(owner_engine, setup.practice) == states
    assert len(await rows(owner_engine, EVENTS, t=setup.practice.id)) == len(events)


async def test_a_999_rejection_rejects_the_batch_with_its_errors_in_words(
    setup: Setup,
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    payer_id = setup.payer_id
    first, first_pcn = await _submitted(claims, setup.api, setup.practice, payer_id)
    second, second_pcn = await _submitted(claims, setup.api, setup.practice, payer_id)
    batch_id = await _batch(claims, setup.practice, payer_id, 11, [first, second])
    await _submit(setup, 11, {first_pcn: REJECT_999, second_pcn: PAY})

    report = await fetch_practice(
        _practice(sessions, settings, setup.practice), BlobStore(), SecretResolver(None)
    )
    assert [o.kind for o in report.outcomes] == ["999"]  # a rejected set gets no 277CA and no 835
    outcome = report.outcomes[0]
    assert (outcome.rejected, outcome.items, outcome.batch_id) == (2, 2, batch_id)

    states = await _states(owner_engine, setup.practice)
    assert states[first][0] == states[second][0] == "rejected"
    linked = await rows(
        owner_engine,
        "SELECT submission_batch_id, status FROM rcm.x12_file WHERE tenant_id = :t AND kind = '999'",
        t=setup.practice.id,
    )
    assert [(r.submission_batch_id, r.status) for r in linked] == [(batch_id, "processed")]
    items = await rows(
        owner_engine,
        "SELECT subject_id FROM rcm.work_item WHERE tenant_id = :t AND reason = 'rejection'",
        t=setup.practice.id,
    )
    assert {i.subject_id for i in items} == {first, second}
    reasons = await rows(
        owner_engine,
        "SELECT claim_id, reason FROM rcm.claim_event WHERE tenant_id = :t AND to_state = 'rejected'",
        t=setup.practice.id,
    )
    assert sorted(str(event.claim_id) for event in reasons) == sorted([str(first), str(second)])
    for event in reasons:
        assert event.reason.startswith("999 R Rejected; 5 One or more segments in error; CLM at ")
        assert "in loop 2300: 8 Segment has data element errors" in event.reason
        assert "CLM02 (element 782): 7 Invalid code value" in event.reason


async def test_an_835_before_its_277ca_accepts_then_adjudicates(
    *,
    setup: Setup,
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    """Files applied out of order: the 835 implies the acceptance; the late 277CA then changes nothing."""
    claim_id, pcn = await _submitted(claims, setup.api, setup.practice, setup.payer_id)
    await _batch(claims, setup.practice, setup.payer_id, 21, [claim_id])
    await _submit(setup, 21, {pcn: PAY})
    payer = _connector(setup)
    page = await payer.fetch_responses(None)
    store = BlobStore()
    async with practice_scope(sessions, settings, setup.practice) as scope:
        kept = {
            row.kind: row
            for row, _ in [
                await files.keep(scope, store, f.content, direction=Direction.INBOUND) for f in page.files
            ]
        }
    assert sorted(kept) == ["277CA", "835", "999"]
    practice = _practice(sessions, settings, setup.practice)
    remit = await apply_one(practice, store, kept["835"].id)
    assert (remit.paid, remit.unmatched) == (1, 0)
    late = await apply_one(practice, store, kept["277CA"].id)
    assert (late.accepted, late.unchanged) == (0, 1)
    icn = payer_claim_control_number(PROVIDER_NPI, pcn)
    assert (await _states(owner_engine, setup.practice))[claim_id] == ("paid", icn)
    moved = await rows(
        owner_engine,
        "SELECT from_state, to_state FROM rcm.claim_event WHERE tenant_id = :t AND claim_id = :c"
        " AND x12_file_id = :f ORDER BY created_at",
        t=setup.practice.id,
        c=claim_id,
        f=kept["835"].id,
    )
    assert [(m.from_state, m.to_state) for m in moved] == [("submitted", "accepted"), ("accepted", "paid")]


async def test_the_fetch_job_and_the_operator_command(
    *,
    setup: Setup,
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
    cli: Cli,
) -> None:
    """The worker's job (its payload ids only, through JSON) and ``rcm claims fetch SLUG`` do the same."""
    from rcm.claims.tasks import fetch_responses
    from rcm.worker import configure_jobs, encode_payload_roundtrip, setup_broker
    from rcm.worker.scheduler import periodic_jobs

    first, first_pcn = await _submitted(claims, setup.api, setup.practice, setup.payer_id)
    await _batch(claims, setup.practice, setup.payer_id, 31, [first])
    await _submit(setup, 31, {first_pcn: PAY})
    setup_broker(settings.model_copy(update={"broker_url": None}))
    configure_jobs(settings, sessions=sessions)
    payload = encode_payload_roundtrip(fetch_responses.message(tenant_id=str(setup.practice.id)))
    assert payload == {"tenant_id": str(setup.practice.id)}
    summary = await fetch_responses(**json.loads(json.dumps(payload)))
    assert "claims.fetch_responses" in periodic_jobs()  # the scheduler queues one per practice
    assert summary.startswith(
        "1 endpoint(s), 3 file(s) fetched, 3 new, 0 for other submitters, 3 applied, 0 refused"
    )
    assert (await _states(owner_engine, setup.practice))[first][0] == "paid"

    second, second_pcn = await _submitted(claims, setup.api, setup.practice, setup.payer_id)
    await _batch(claims, setup.practice, setup.payer_id, 32, [second])
    await _submit(setup, 32, {second_pcn: DENY})
    result = await cli("claims", "fetch", setup.practice.slug)
    unknown = await cli("claims", "fetch", "no-such-practice")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{setup.practice.slug}: 1 endpoint(s), 3 file(s) fetched, 3 new")
    assert (await _states(owner_engine, setup.practice))[second][0] == "denied"
    assert unknown.exit_code != 0
    assert "no-such-practice" in unknown.output

"""276/277 status inquiries against the sandbox payer: overdue claims asked about once per interval, the
277 applied (accepted, rejected with an item, pending untouched, not found as a follow-up), both files kept
and linked, and the job idempotent."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.audit.events import RequestInfo
from rcm.blobs.store import BlobStore
from rcm.claims.states import ClaimState
from rcm.claims.status_inquiry import ask, classify, prepare, record, run_status_inquiries
from rcm.claims.status_jobs import status_inquiries
from rcm.config import Settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.eligibility.models import InquiryOutcome
from rcm.identity.principal import system_principal
from rcm.kit.secrets import SecretResolver
from rcm.kit.tenant import TenantId
from rcm.payers.breaker import Breaker, MemoryBreaker, breaker_key
from rcm.tenancy.models import Tenant
from rcm.worker import configure_jobs
from sandbox_payer.store import ClaimRecord, Store
from tests.claims.conftest import Claims, practice_scope, rows
from tests.support import Api, Cli


@pytest.fixture(autouse=True)
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """The sandbox payer (claims and status share ``sandbox:claims``) in this test's directory."""
    monkeypatch.setenv("RCM_ENV", "test")
    monkeypatch.setenv("RCM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DEMO_MCR_CREDENTIALS", "sandbox-token")
    return Store(tmp_path / "sandbox-payer" / "claims")


@pytest.fixture
def jobs(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> Iterator[None]:
    configure_jobs(settings, sessions=sessions)
    yield
    configure_jobs(settings)


async def _submitted_long_ago(
    claims: Claims, api: Api, practice: Tenant, owner_engine: AsyncEngine
) -> tuple[uuid.UUID, str]:
    claim_id = await claims.new(api, practice)
    await claims.walk(practice, claim_id, ClaimState.SUBMITTED)
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE rcm.claim SET state_changed_at = now() - interval '40 days'"
                " WHERE tenant_id = :t AND id = :c"
            ),
            {"t": practice.id, "c": claim_id},
        )
    found = await rows(owner_engine, "SELECT patient_control_number FROM rcm.claim WHERE id = :c", c=claim_id)
    return claim_id, found[0].patient_control_number


def _record(pcn: str, ccn: str, outcome: str, *, due: int = 0) -> ClaimRecord:
    return ClaimRecord(
        payer_claim_control_number=ccn,
        patient_control_number=pcn,
        provider_npi="1003000126",
        outcome=outcome,
        charge=14150,
        paid=14150 if outcome == "paid" else 0,
        due=due,
    )


async def _run(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    practice: Tenant,
    *,
    breaker: Breaker | None = None,
) -> dict[str, int]:
    counts = await run_status_inquiries(
        sessions,
        KeyStore(key_provider(settings)),
        tenant_ids=[TenantId(practice.id)],
        store=BlobStore.from_settings(settings),
        secrets=SecretResolver(None),
        deadline_seconds=10.0,
        breaker=breaker or MemoryBreaker(failures=5, cooldown_seconds=60.0),
        actor=system_principal("claims.status_inquiries"),
        request=RequestInfo(request_id="status-test", trace_id=""),
    )
    return dict(counts)


async def test_the_277_moves_rejects_waits_or_follows_up_each_claim_once(
    *,
    claims: Claims,
    intake: Api,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
    sandbox: Store,
) -> None:
    finalized, finalized_pcn = await _submitted_long_ago(claims, intake, practice, owner_engine)
    pending, pending_pcn = await _submitted_long_ago(claims, intake, practice, owner_engine)
    rejected, rejected_pcn = await _submitted_long_ago(claims, intake, practice, owner_engine)
    missing, _ = await _submitted_long_ago(claims, intake, practice, owner_engine)
    sandbox.save_claims(
        {
            "CCN-F": _record(finalized_pcn, "CCN-F", "paid"),
            "CCN-P": _record(pending_pcn, "CCN-P", "paid", due=5),
            "CCN-R": _record(rejected_pcn, "CCN-R", "rejected_277ca"),
        }
    )

    counts = await _run(sessions, settings, practice)
    assert counts == {"finalized": 1, "pending": 1, "rejected": 1, "not_found": 1}

    states = {
        r.id: (r.state, r.payer_claim_control_number)
        for r in await rows(
            owner_engine,
            "SELECT id, state, payer_claim_control_number FROM rcm.claim WHERE tenant_id = :t",
            t=practice.id,
        )
    }
    assert states[finalized] == (
        "accepted",
        "CCN-F",
    )  # finalized by the payer: accepted here, paid by the 835
    assert states[pending] == ("submitted", None)
    assert states[rejected][0] == "rejected"
    assert states[missing] == ("submitted", None)
    items = {
        r.subject_id: r.reason
        for r in await rows(
            owner_engine,
            "SELECT subject_id, reason FROM rcm.work_item WHERE tenant_id = :t AND kind = 'billing'",
            t=practice.id,
        )
    }
    assert items == {rejected: "rejection", missing: "follow_up"}

    # Each inquiry links its 276 and 277; the claim's event links the 277 that moved it.
    inquiries = await rows(
        owner_engine,
        "SELECT i.claim_id, i.outcome, i.category, q.kind AS asked, a.kind AS answered"
        " FROM rcm.claim_status_inquiry i"
        " JOIN rcm.x12_file q ON q.tenant_id = i.tenant_id AND q.id = i.request_file_id"
        " JOIN rcm.x12_file a ON a.tenant_id = i.tenant_id AND a.id = i.response_file_id"
        " WHERE i.tenant_id = :t",
        t=practice.id,
    )
    assert {(r.claim_id, r.outcome, r.category, r.asked, r.answered) for r in inquiries} == {
        (finalized, "finalized", "F1", "276", "277"),
        (pending, "pending", "P1", "276", "277"),
        (rejected, "rejected", "A7", "276", "277"),
        (missing, "not_found", "A4", "276", "277"),
    }
    events = await rows(
        owner_engine,
        "SELECT e.cause, e.reason, f.kind FROM rcm.claim_event e JOIN rcm.x12_file f"
        " ON f.tenant_id = e.tenant_id AND f.id = e.x12_file_id WHERE e.claim_id = :c",
        c=finalized,
    )
    assert [(e.cause, e.kind) for e in events] == [("status", "277")]
    assert events[0].reason == "277 F1 Finalized/Payment: 65 Claim/line has been paid"

    # At-least-once: running again (or redelivering) asks nobody twice within the payer's interval.
    assert await _run(sessions, settings, practice) == {}
    async with practice_scope(sessions, settings, practice) as scope:
        again = await prepare(scope, pending, now=datetime.now(UTC))
    assert again is None
    count = await rows(
        owner_engine, "SELECT count(*) AS n FROM rcm.claim_status_inquiry WHERE tenant_id = :t", t=practice.id
    )
    assert count[0].n == 4


async def test_the_actor_asks_for_one_practice_only(
    *,
    claims: Claims,
    intake: Api,
    other_intake: Api,
    practice: Tenant,
    other_practice: Tenant,
    owner_engine: AsyncEngine,
    jobs: None,
) -> None:
    mine, _ = await _submitted_long_ago(claims, intake, practice, owner_engine)
    theirs, _ = await _submitted_long_ago(claims, other_intake, other_practice, owner_engine)
    payload = json.loads(json.dumps({"tenant_id": str(practice.id)}))
    assert await status_inquiries(**payload) == {"not_found": 1}
    asked = await rows(
        owner_engine,
        "SELECT claim_id FROM rcm.claim_status_inquiry WHERE claim_id = ANY (:c)",
        c=[mine, theirs],
    )
    assert [r.claim_id for r in asked] == [mine]


def test_an_unreadable_answer_or_a_999_is_refused() -> None:
    assert classify(b"not x12", "T1") == (InquiryOutcome.REFUSED, None)


async def test_the_operator_command_asks_and_prints_the_outcomes(
    *, claims: Claims, intake: Api, practice: Tenant, owner_engine: AsyncEngine, cli: Cli
) -> None:
    await _submitted_long_ago(claims, intake, practice, owner_engine)
    first = await cli("claims", "status-inquiries", practice.slug)
    again = await cli("claims", "status-inquiries", practice.slug)
    assert first.exit_code == 0, first.output
    assert first.output.strip() == "not_found=1"
    assert again.output.strip() == "no claims due an inquiry"


async def test_an_open_circuit_asks_nobody_and_records_nothing(
    *,
    claims: Claims,
    intake: Api,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
    sandbox: Store,
) -> None:
    claim_id, pcn = await _submitted_long_ago(claims, intake, practice, owner_engine)
    sandbox.save_claims({"CCN-F": _record(pcn, "CCN-F", "paid")})
    breaker = MemoryBreaker(failures=1, cooldown_seconds=600.0)
    await breaker.record_failure(breaker_key("sandbox", "sandbox:claims"))  # the payer was down a moment ago

    assert await _run(sessions, settings, practice, breaker=breaker) == {"unanswered": 1}
    # Nothing of the question was kept and nothing moved: the claim is asked again at the next run.
    kept = await rows(
        owner_engine,
        "SELECT (SELECT count(*) FROM rcm.claim_status_inquiry WHERE tenant_id = :t) AS inquiries,"
        " (SELECT count(*) FROM rcm.x12_file WHERE tenant_id = :t AND kind IN ('276', '277')) AS files",
        t=practice.id,
    )
    assert (kept[0].inquiries, kept[0].files) == (0, 0)

    await breaker.record_success(breaker_key("sandbox", "sandbox:claims"))
    assert await _run(sessions, settings, practice, breaker=breaker) == {"finalized": 1}
    state = await rows(owner_engine, "SELECT state FROM rcm.claim WHERE id = :c", c=claim_id)
    assert state[0].state == "accepted"


async def test_two_runners_that_both_asked_apply_the_first_answer_only(
    *,
    claims: Claims,
    intake: Api,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
    sandbox: Store,
) -> None:
    claim_id, pcn = await _submitted_long_ago(claims, intake, practice, owner_engine)
    sandbox.save_claims({"CCN-R": _record(pcn, "CCN-R", "rejected_277ca")})
    now = datetime.now(UTC)
    store = BlobStore.from_settings(settings)
    breaker = MemoryBreaker(failures=5, cooldown_seconds=60.0)
    questions = []
    for _ in range(2):  # both built before either answer is recorded: no lock is held while asking
        async with practice_scope(sessions, settings, practice) as scope:
            question = await prepare(scope, claim_id, now=now)
        assert question is not None
        questions.append(question)
    answers = [
        await ask(q, secrets=SecretResolver(None), deadline_seconds=10.0, breaker=breaker) for q in questions
    ]
    outcomes = []
    for question, answer in zip(questions, answers, strict=True):
        async with practice_scope(sessions, settings, practice) as scope:
            outcomes.append(await record(scope, question, answer, store=store, now=now))
    assert outcomes == [InquiryOutcome.REJECTED, None]
    found = await rows(
        owner_engine,
        "SELECT (SELECT count(*) FROM rcm.claim_status_inquiry WHERE claim_id = :c) AS inquiries,"
        " (SELECT count(*) FROM rcm.claim_event WHERE claim_id = :c AND cause = 'status') AS moves,"
        " (SELECT count(*) FROM rcm.work_item WHERE subject_id = :c) AS items",
        c=claim_id,
    )
    assert (found[0].inquiries, found[0].moves, found[0].items) == (1, 1, 1)
    reason = await rows(
        owner_engine,
        "SELECT reason FROM rcm.claim_event WHERE claim_id = :c AND cause = 'status'",
        c=claim_id,
    )
    assert reason[0].reason.startswith("277 A7 Acknowledgement/Rejected for invalid information: ")

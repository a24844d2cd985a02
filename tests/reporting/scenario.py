"""Constructed histories for the KPI, forecast and productivity tests: a claim's charges, submissions,
acknowledgments, 835 outcomes and ledger postings written at chosen instants, so each expected figure can be
worked out by hand in the test.

Encounters (with their patient) come through the practice's API; the claim rows, events and ledger
postings are then written directly (as the superuser: the tests choose their timestamps), exactly as the
claims and ledger packages write them (double entry, each posting balanced).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from rcm.ledger.models import LedgerEntry
from tests.support import Api, encounter_payload


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


_CLAIM = text(
    "INSERT INTO rcm.claim (tenant_id, id, created_at, encounter_id, patient_id, payer_id, responsibility,"
    " state, frequency, patient_control_number, service_date, place_of_service, diagnoses,"
    " total_charge_cents, original_claim_id)"
    " VALUES (:tenant_id, :id, :created_at, :encounter_id, :patient_id, :payer_id, 'primary', :state,"
    " :frequency, :pcn, :service_date, '11', ARRAY['E119'], :charge, :original)"
)
_EVENT = text(
    "INSERT INTO rcm.claim_event (tenant_id, id, created_at, claim_id, from_state, to_state, cause, actor)"
    " VALUES (:tenant_id, :id, :created_at, :claim_id, NULL, :to_state, :cause, :actor)"
)
_POSTING = text(
    "INSERT INTO rcm.ledger_posting (tenant_id, id, created_at, source, claim_id, actor)"
    " VALUES (:tenant_id, :id, :created_at, :source, :claim_id, :actor)"
)
_SCRUB = text(
    "INSERT INTO rcm.scrub_run (tenant_id, id, created_at, encounter_id, outcome, errors, warnings,"
    " not_checked, actor, passed) VALUES (:tenant_id, :id, :created_at, :encounter_id, :outcome, :errors, 0,"
    " 0, 'scrubber', '[]'::jsonb)"
)


class Scenario:
    def __init__(self, owner_engine: AsyncEngine, api: Api) -> None:
        self.engine = owner_engine
        self.api = api
        self.tenant_id = uuid.UUID(api.tenant_id)
        self.encounters: dict[uuid.UUID, uuid.UUID] = {}

    async def _run(self, statement: Any, rows: list[dict[str, Any]]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                statement, [{"tenant_id": self.tenant_id, "id": uuid.uuid4(), **r} for r in rows]
            )

    async def claim(
        self,
        *,
        service_date: date,
        charge: int,
        payer: str = "DEMO-MCR",
        state: str = "accepted",
        charged_at: datetime | None = None,
        frequency: int = 1,
    ) -> uuid.UUID:
        """A claim (its encounter made through the API) and, when ``charged_at``, its charges posted."""
        enc = await self.api.post("/encounters", encounter_payload())
        assert enc.status_code == 201, enc.text
        body = enc.json()
        claim_id = uuid.uuid4()
        async with self.engine.begin() as conn:
            original = None
            if frequency != 1:  # a replacement needs an original to point at: the claim itself will do
                original = claim_id
            await conn.execute(
                _CLAIM,
                {
                    "tenant_id": self.tenant_id,
                    "id": claim_id,
                    "created_at": charged_at or at(service_date),
                    "encounter_id": body["id"],
                    "patient_id": body["patient_id"],
                    "payer_id": payer,
                    "state": state,
                    "frequency": frequency,
                    "pcn": uuid.uuid4().hex[:20].upper(),
                    "service_date": service_date,
                    "charge": charge,
                    "original": original,
                },
            )
        self.encounters[claim_id] = uuid.UUID(body["id"])
        if charged_at is not None:
            await self.post(
                claim_id, charged_at, "claim_built", [("insurance_receivable", charge), ("charges", -charge)]
            )
        return claim_id

    async def set_state(self, claim_id: uuid.UUID, state: str) -> None:
        """The claim's state changed (as the claims package moves it: an UPDATE of its row)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                text("UPDATE rcm.claim SET state = :state WHERE tenant_id = :t AND id = :id"),
                {"state": state, "t": self.tenant_id, "id": claim_id},
            )

    async def event(
        self,
        claim_id: uuid.UUID,
        to_state: str,
        when: datetime,
        *,
        cause: str | None = None,
        actor: str | None = None,
    ) -> None:
        if cause is None:
            cause = {
                "submitted": "submission",
                "accepted": "acknowledgment",
                "rejected": "acknowledgment",
                "paid": "remittance",
                "partially_paid": "remittance",
                "denied": "remittance",
            }.get(to_state, "biller")
        await self._run(
            _EVENT,
            [
                {
                    "created_at": when,
                    "claim_id": claim_id,
                    "to_state": to_state,
                    "cause": cause,
                    "actor": actor,
                }
            ],
        )

    async def post(
        self,
        claim_id: uuid.UUID | None,
        when: datetime,
        source: str,
        entries: list[tuple[str, int] | tuple[str, int, str]],
        *,
        actor: str | None = None,
    ) -> None:
        assert sum(e[1] for e in entries) == 0, "a posting balances"
        posting_id = uuid.uuid4()
        async with self.engine.begin() as conn:
            await conn.execute(
                _POSTING,
                {
                    "tenant_id": self.tenant_id,
                    "id": posting_id,
                    "created_at": when,
                    "source": source,
                    "claim_id": claim_id,
                    "actor": actor,
                },
            )
            # One statement for the posting's entries: the ledger checks each INSERT statement's postings
            # balance (an executemany would be one statement per entry).
            await conn.execute(
                insert(LedgerEntry.__table__).values(
                    [
                        {
                            "tenant_id": self.tenant_id,
                            "id": uuid.uuid4(),
                            "created_at": when,
                            "posting_id": posting_id,
                            "account": e[0],
                            "amount_cents": e[1],
                            "claim_id": claim_id,
                            "adjustment_group": e[2] if len(e) > 2 else None,  # type: ignore[misc]
                            "remark_codes": [],
                        }
                        for e in entries
                    ]
                )
            )

    async def remit(
        self,
        claim_id: uuid.UUID,
        when: datetime,
        *,
        paid: int,
        contractual: int = 0,
        patient: int = 0,
        state: str | None = None,
    ) -> None:
        """An 835 CLP: the payment, CO and PR adjustments off the insurance receivable, and its event."""
        entries: list[tuple[str, int] | tuple[str, int, str]] = []
        if paid:
            entries += [("payments", paid), ("insurance_receivable", -paid)]
        if contractual:
            entries += [("adjustments", contractual, "CO"), ("insurance_receivable", -contractual, "CO")]
        if patient:
            entries += [("patient_receivable", patient, "PR"), ("insurance_receivable", -patient, "PR")]
        if entries:
            await self.post(claim_id, when, "remittance_claim", entries)
        outcome = state or ("denied" if not paid else "partially_paid" if patient else "paid")
        await self.event(claim_id, outcome, when)

    async def scrub(self, claim_id: uuid.UUID, when: datetime, *, outcome: str) -> None:
        await self._run(
            _SCRUB,
            [
                {
                    "created_at": when,
                    "encounter_id": self.encounters[claim_id],
                    "outcome": outcome,
                    "errors": 1 if outcome == "failed" else 0,
                }
            ],
        )


def days(n: int) -> timedelta:
    return timedelta(days=n)


_ITEM = text(
    "INSERT INTO rcm.work_item (tenant_id, id, created_at, kind, subject_type, subject_id, status, priority,"
    " due_at, reason, updated_at) VALUES (:tenant_id, :id, :created_at, :kind, :subject_type, :subject_id,"
    " :status, 3, :due_at, :reason, :created_at)"
)
_ITEM_EVENT = text(
    "INSERT INTO rcm.work_item_event (tenant_id, id, created_at, work_item_id, event, status, actor)"
    " VALUES (:tenant_id, :id, :created_at, :work_item_id, :event, :status, :actor)"
)
_VERSION = text(
    "INSERT INTO rcm.coding_version (tenant_id, id, created_at, work_item_id, encounter_id, number, state,"
    " coder) VALUES (:tenant_id, :id, :created_at, :work_item_id, :encounter_id, :number, :state, :coder)"
)
_SAMPLE = text(
    "INSERT INTO rcm.qa_sample (tenant_id, id, created_at, work_item_id, encounter_id, original_version_id,"
    " coder, sampled_by, status, reviewer, review_version_id, reviewed_at, dx_agreed, dx_total, px_agreed,"
    " px_total) VALUES (:tenant_id, :id, :created_at, :work_item_id, :encounter_id, :original, :coder,"
    " 'supervisor', 'reviewed', 'reviewer', :review, :created_at, :dx_agreed, :dx_total, :px_agreed,"
    " :px_total)"
)


class Work(Scenario):
    """Work items, their completion by a person, and QA samples of coded work."""

    async def item(
        self,
        *,
        kind: str,
        status: str,
        created: datetime,
        due: datetime,
        completed_by: str | None = None,
        completed_at: datetime | None = None,
    ) -> uuid.UUID:
        item_id = uuid.uuid4()
        reason = "rejection" if kind == "billing" else None
        async with self.engine.begin() as conn:
            await conn.execute(
                _ITEM,
                {
                    "tenant_id": self.tenant_id,
                    "id": item_id,
                    "created_at": created,
                    "kind": kind,
                    "subject_type": "claim" if kind == "billing" else "encounter",
                    "subject_id": uuid.uuid4(),
                    "status": status,
                    "due_at": due,
                    "reason": reason,
                },
            )
            if completed_by is not None:
                await conn.execute(
                    _ITEM_EVENT,
                    {
                        "tenant_id": self.tenant_id,
                        "id": uuid.uuid4(),
                        "created_at": completed_at,
                        "work_item_id": item_id,
                        "event": "completed",
                        "status": "done",
                        "actor": completed_by,
                    },
                )
        return item_id

    async def sample(self, coder: str, when: datetime, *, dx: tuple[int, int], px: tuple[int, int]) -> None:
        """A completed coding by ``coder`` re-coded blind by a reviewer: agreement counts as given."""
        enc = await self.api.post("/encounters", encounter_payload())
        assert enc.status_code == 201, enc.text
        item = await self.item(kind="coding", status="done", created=when, due=when)
        versions = [uuid.uuid4(), uuid.uuid4()]
        async with self.engine.begin() as conn:
            for number, (version, state) in enumerate(zip(versions, ("completed", "review"), strict=True), 1):
                await conn.execute(
                    _VERSION,
                    {
                        "tenant_id": self.tenant_id,
                        "id": version,
                        "created_at": when,
                        "work_item_id": item,
                        "encounter_id": enc.json()["id"],
                        "number": number,
                        "state": state,
                        "coder": coder,
                    },
                )
            await conn.execute(
                _SAMPLE,
                {
                    "tenant_id": self.tenant_id,
                    "id": uuid.uuid4(),
                    "created_at": when,
                    "work_item_id": item,
                    "encounter_id": enc.json()["id"],
                    "original": versions[0],
                    "coder": coder,
                    "review": versions[1],
                    "dx_agreed": dx[0],
                    "dx_total": dx[1],
                    "px_agreed": px[0],
                    "px_total": px[1],
                },
            )


async def rebuilt_alike(engine: AsyncEngine, tenant_id: Any, *queries: str) -> list[list[tuple[Any, ...]]]:
    """Each query's rows (``:t`` the practice) as the rollup triggers kept them, checked equal to the same
    rows once the practice's rollups are summed again from scratch (``rcm.report_rebuild``)."""

    async def read() -> list[list[tuple[Any, ...]]]:
        async with engine.begin() as conn:
            return [[tuple(r) for r in await conn.execute(text(q), {"t": tenant_id})] for q in queries]

    kept = await read()
    async with engine.begin() as conn:
        await conn.execute(text("SELECT rcm.report_rebuild(:t)"), {"t": tenant_id})
    assert await read() == kept
    return kept


async def forecast_rollups_rebuilt_alike(engine: AsyncEngine, tenant_id: str) -> tuple[list[Any], list[Any]]:
    """The practice's forecast rollups (groups holding nothing left out, in key order), ``rebuilt_alike``."""
    claims, payments = await rebuilt_alike(
        engine,
        tenant_id,
        "SELECT payer_id, submitted_on, adjudicated_on, ended, claims, charged_cents"
        " FROM rcm.report_forecast_claims WHERE tenant_id = :t AND (claims, charged_cents) <> (0, 0)"
        " ORDER BY 1, 2, 3, 4",
        "SELECT payer_id, submitted_on, adjudicated_on, posted_on, cents"
        " FROM rcm.report_forecast_payments WHERE tenant_id = :t AND cents <> 0 ORDER BY 1, 2, 3, 4",
    )
    return claims, payments

"""The scrub over the code-set package's tables (``CodeSetReference``): NCCI, MUE, sex/age and code validity
fire from loaded releases, a set not loaded is "not checked", and loading it turns an incomplete scrub clean
(resolving the billing item the incomplete one opened).

The code tables are global, so the releases are loaded in one owner transaction that is rolled back at the
end (``codes_db``); the scrub runs in that same transaction, bound to the test practice (RLS) like a request.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.audit.events import RequestInfo
from rcm.audit.trail import pending_events
from rcm.codes.importers.base import CodeRow, MueRow, ParsedRelease, PtpRow, Row, SexAgeRow
from rcm.codes.models import CodeSet, CodeSystem
from rcm.codes.service import load_release
from rcm.config import Settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.identity.principal import Role
from rcm.identity.testing import user_principal
from rcm.kit.db import apply_tenant_context
from rcm.kit.secrets import SecretResolver
from rcm.kit.tenant import TenantContext, TenantId
from rcm.scrub import service
from rcm.scrub.reference import CodeSetReference, NotLoaded
from rcm.tenancy.models import Tenant
from rcm.tenancy.scope import TenantScope
from tests.codes.conftest import codes_db  # noqa: F401 - the rolled-back code-set transaction
from tests.support import Api, encounter_payload

START = date(2025, 10, 1)


async def load(session: AsyncSession, code_set: CodeSet, rows: Sequence[Row]) -> None:
    parsed = ParsedRelease(
        code_set=code_set,
        label=f"TEST-{code_set.value}",
        effective_from=START,
        effective_through=None,
        source="test",
        checksum=uuid.uuid4().hex,
        rows=list(rows),
    )
    await load_release(session, parsed, as_owner=False)


def codes(*values: str) -> list[Row]:
    return [CodeRow(code=value, description=f"test {value}") for value in values]


async def load_code_systems(session: AsyncSession) -> None:
    await load(session, CodeSet.ICD10CM, codes("E119", "I10"))
    await load(session, CodeSet.CPT, codes("99213", "20610", "99381", "25", "59"))  # CPT modifiers too
    await load(session, CodeSet.HCPCS, codes("G2211"))
    await load(session, CodeSet.MODIFIER, codes("LT", "XS"))


async def load_edits(session: AsyncSession, *, mue: bool = True) -> None:
    await load(session, CodeSet.NCCI_PTP, [PtpRow("20610", "99213", START, None, 1, False, "test")])
    if mue:
        await load(session, CodeSet.MUE, [MueRow("20610", 1, 1, "test")])
    await load(session, CodeSet.SEX_AGE, [SexAgeRow(CodeSystem.CPT, "99381", None, 0, 1)])


async def scope_in(session: AsyncSession, tenant: Tenant, settings: Settings) -> TenantScope:
    """A biller's scope over the test practice, in the code-set transaction. Made after the practice's
    first encounter: its first data key is then committed, not created (and held) by this transaction."""
    tenant_id = TenantId(tenant.id)
    context = TenantContext.single(tenant_id)
    await apply_tenant_context(session, context)
    keyring = await KeyStore(key_provider(settings)).keyring(session, tenant_id)
    return TenantScope(
        session=session,
        context=context,
        principal=user_principal(Role.BILLER),
        keyring=keyring,
        request=RequestInfo(request_id="scrub-test", trace_id=""),
        manifest=tenant.manifest,
        access="assignment",
    )


async def scrub(
    scope: TenantScope, encounter_id: str, *, dry_run: bool = False, read_releases: bool = True
) -> Any:
    """``read_releases``: the reference reads the release list itself; otherwise the service's default
    (which sets are loaded comes with the encounter's one read)."""
    return await service.scrub_encounter(
        scope,
        uuid.UUID(encounter_id),
        dry_run=dry_run,
        secrets=SecretResolver(),
        reference=CodeSetReference(scope.session) if read_releases else None,
    )


def by_rule(report: Any) -> dict[str, Any]:
    return {r.rule: r for r in report.rules}


async def test_edits_fire_from_the_loaded_code_sets(
    intake: Api,
    codes_db: AsyncSession,  # noqa: F811
    scrub_tenant: Tenant,
    settings: Settings,
) -> None:
    payload = encounter_payload(
        diagnoses=[{"code": "E11.9"}, {"code": "Z99.89"}],
        charges=[
            {"procedure_code": "99213", "charge_cents": 12500, "diagnosis_pointers": [1]},
            {"procedure_code": "20610", "charge_cents": 9000, "units": 3, "diagnosis_pointers": [1]},
            {"procedure_code": "99381", "charge_cents": 15000, "diagnosis_pointers": [1]},
        ],
    )
    enc = (await intake.post("/encounters", payload)).json()
    scope = await scope_in(codes_db, scrub_tenant, settings)
    await load_code_systems(codes_db)
    await load_edits(codes_db)
    report = await scrub(scope, enc["id"], dry_run=True)
    rules = by_rule(report)
    assert report.outcome.value == "failed"
    ncci = rules["NCCI-PTP@2026.1"]
    assert ncci.status.value == "fired"
    assert "99213" in ncci.findings[0].message
    assert "bundled into 20610" in ncci.findings[0].message
    assert ncci.findings[0].line_number == 1
    mue = rules["MUE@2026.1"]
    assert mue.status.value == "fired"
    assert "3 units" in mue.findings[0].message
    sex_age = rules["SEX-AGE@2026.1"]
    assert sex_age.status.value == "fired"
    assert "99381" in sex_age.findings[0].message
    assert "1980" not in sex_age.findings[0].message  # the birth date itself never appears
    code_check = rules["CODES-VALID@2026.1"]
    assert code_check.status.value == "fired"
    assert [f.message for f in code_check.findings] == [
        f"The icd10cm code Z99.89 is not valid on {payload['service_date']} (unknown code)."
    ]
    # The age edit needed the birth date: that PHI read is audited (buffered to commit with the request).
    events = [e for e in pending_events(codes_db) if e.event_type == "encounter.scrub"]
    assert [(e.detail["phi_read"], e.patient_ids) for e in events] == [
        ("birth_date", (uuid.UUID(enc["patient_id"]),))
    ]


async def test_a_set_not_loaded_is_not_checked_and_loading_it_makes_the_scrub_clean(
    intake: Api,
    codes_db: AsyncSession,  # noqa: F811
    scrub_tenant: Tenant,
    settings: Settings,
) -> None:
    enc = (await intake.post("/encounters", encounter_payload())).json()
    scope = await scope_in(codes_db, scrub_tenant, settings)
    await load_code_systems(codes_db)
    await load_edits(codes_db, mue=False)

    first = await scrub(scope, enc["id"], read_releases=False)
    assert first.outcome.value == "incomplete"
    assert first.not_checked_rules == ["MUE@2026.1"]
    assert (
        by_rule(first)["MUE@2026.1"].reason
        == "MUE limits for " + enc["service_date"] + ": no MUE release is loaded"
    )
    assert first.work_item_id is not None
    assert by_rule(first)["NCCI-PTP@2026.1"].status.value == "passed"  # loaded, no pair among these codes

    await load(codes_db, CodeSet.MUE, [MueRow("20610", 1, 1, "test")])
    second = await scrub(scope, enc["id"], read_releases=False)
    assert second.outcome.value == "clean"
    assert second.fired == []
    assert second.not_checked_rules == []
    assert second.work_item_id is None
    items = (
        await codes_db.execute(
            text("SELECT status FROM rcm.work_item WHERE kind = 'billing' AND subject_id = :e"),
            {"e": uuid.UUID(enc["id"])},
        )
    ).all()
    assert items == [("done",)]
    # A clean run is one row: the passed rules are listed on it, no result row is written.
    stored = (
        await codes_db.execute(
            text(
                "SELECT jsonb_array_length(passed), (SELECT count(*) FROM rcm.scrub_result r"
                " WHERE r.scrub_run_id = s.id) FROM rcm.scrub_run s WHERE s.id = :r"
            ),
            {"r": second.id},
        )
    ).one()
    assert tuple(stored) == (len(second.rules), 0)

    # The clean scrub built the encounter's claim; scrubbing clean again builds no second one.
    assert second.claim_id is not None
    third = await scrub(scope, enc["id"], read_releases=False)
    assert third.claim_id == second.claim_id
    built = (
        await codes_db.execute(
            text("SELECT id, frequency, payer_id FROM rcm.claim WHERE encounter_id = :e"),
            {"e": uuid.UUID(enc["id"])},
        )
    ).all()
    assert [tuple(row) for row in built] == [(second.claim_id, 1, "DEMO-MCR")]
    # The stored run read back names the same claim.
    assert (await service.latest_scrub(scope, uuid.UUID(enc["id"]))).claim_id == second.claim_id


async def test_dates_before_the_oldest_release_are_not_loaded(
    codes_db: AsyncSession,  # noqa: F811
) -> None:
    await load_edits(codes_db)
    reference = CodeSetReference(codes_db)
    early = await reference.ncci_pairs(["99213", "20610"], date(2024, 1, 2))
    assert isinstance(early, NotLoaded)
    assert "starts 2025-10-01" in early.reason
    assert await reference.mue_limits(["99213"], START) == {}  # loaded, no edit: not the same answer
    codes_answer = await reference.check_codes([("cpt", "99213"), ("modifier", "25")], START)
    assert not isinstance(codes_answer, NotLoaded)
    assert [c.valid for c in codes_answer] == [None, None]  # no CPT release: not checked, never valid
    await load_code_systems(codes_db)
    loaded = await CodeSetReference(codes_db).check_codes(
        [("modifier", "25"), ("modifier", "XS"), ("modifier", "59")], START
    )
    assert not isinstance(loaded, NotLoaded)
    assert [c.valid for c in loaded] == [True, True, True]

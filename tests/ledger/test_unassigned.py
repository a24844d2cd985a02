"""The unassigned-ERA queue: a biller's 835 whose payee names no practice is queued (the file sealed, no PHI
listed), a supervisor of the biller's practice routes it by hand and it is posted there once; routing it
again is a 409; another practice's supervisor neither sees nor routes it."""

from __future__ import annotations

import hashlib

from sqlalchemy import text

from rcm.audit.events import RequestInfo
from rcm.blobs.store import BlobStore
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.identity.principal import Role, operator_principal
from rcm.kit.secrets import SecretResolver
from rcm.ledger.intake import import_file
from rcm.tenancy.models import Tenant
from tests.claims.conftest import Claims
from tests.coding.conftest import MakeStaff
from tests.ledger.support import era_file, paid_in_part, submitted_claim
from tests.support import Api

UNKNOWN_NPI = "1999999992"


async def test_an_unassigned_payment_is_queued_then_routed_by_hand_once(
    *,
    claims: Claims,
    intake: Api,
    practice: Tenant,
    other_practice: Tenant,
    make_staff: MakeStaff,
) -> None:
    claim, lines = await submitted_claim(claims, intake, practice)
    paid = paid_in_part(claim, lines)
    data = era_file(paid, trace="EFT-Q1", control=41, npi=UNKNOWN_NPI)
    biller = await make_staff(Role.BILLER, practice)
    headers = biller.headers() | {"Content-Type": "application/edi-x12"}
    summary = (await biller.client.post("/api/v1/billing/remittances", content=data, headers=headers)).json()
    assert (summary["posted"], summary["practices"]) == (0, {})
    [left] = summary["unassigned"]
    queued_id = left["queued_id"]
    assert queued_id is not None
    # The same file again: the same queue entry, not a second one.
    again = (await biller.client.post("/api/v1/billing/remittances", content=data, headers=headers)).json()
    assert again["unassigned"][0]["queued_id"] == queued_id
    # Kept sealed: the file's bytes are nowhere in clear.
    async with claims.sessions() as session:
        found = await session.execute(
            text("SELECT ciphertext FROM rcm.unassigned_era_file WHERE sha256 = :d"),
            {"d": hashlib.sha256(data).digest()},
        )
        sealed = [bytes(s) for s in found.scalars().all()]
    assert len(sealed) == 1
    assert data[:200] not in sealed[0]
    assert b"CLP*" not in sealed[0]

    supervisor = await make_staff(Role.SUPERVISOR, practice)
    listed = (await supervisor.get("/billing/unassigned-remittances")).json()
    assert [(q["id"], q["trace_number"], q["total_paid_cents"], q["payee_npi"]) for q in listed] == [
        (queued_id, "EFT-Q1", paid.paid, UNKNOWN_NPI)
    ]
    # Another practice's supervisor: sees nothing, may not route it.
    theirs = await make_staff(Role.SUPERVISOR, other_practice)
    assert (await theirs.get("/billing/unassigned-remittances")).json() == []
    refused = await theirs.post(
        f"/billing/unassigned-remittances/{queued_id}/route", json={"tenant": other_practice.slug}
    )
    assert refused.status_code == 404, refused.text
    not_theirs = await theirs.post(
        f"/billing/unassigned-remittances/{queued_id}/route", json={"tenant": practice.slug}
    )
    assert not_theirs.status_code == 422, not_theirs.text

    routed = await supervisor.post(
        f"/billing/unassigned-remittances/{queued_id}/route", json={"tenant": practice.slug}
    )
    assert routed.status_code == 200, routed.text
    body = routed.json()
    assert (body["tenant"], body["result"]["posted"], body["result"]["posted_cents"]) == (
        practice.slug,
        1,
        paid.paid,
    )
    assert body["queued"]["routed_tenant_id"] == str(practice.id)
    assert (await intake.get(f"/claims/{claim.id}/ledger")).json()["insurance_balance_cents"] == 0
    # Routed twice (a new key): 409, nothing posted again; the open queue is empty.
    twice = await supervisor.post(
        f"/billing/unassigned-remittances/{queued_id}/route", json={"tenant": practice.slug}
    )
    assert twice.status_code == 409, twice.text
    assert (await supervisor.get("/billing/unassigned-remittances")).json() == []
    done = (await supervisor.get("/billing/unassigned-remittances", routed=True)).json()
    assert [q["id"] for q in done] == [queued_id]
    posted = (await biller.get("/billing/remittances", remittance_state="posted")).json()["items"]
    assert [r["trace_number"] for r in posted] == ["EFT-Q1"]


async def test_an_operators_import_is_routed_by_a_platform_admin_only(
    *,
    claims: Claims,
    intake: Api,
    practice: Tenant,
    make_staff: MakeStaff,
) -> None:
    claim, lines = await submitted_claim(claims, intake, practice)
    paid = paid_in_part(claim, lines)
    data = era_file(paid, trace="EFT-Q2", control=42, npi=UNKNOWN_NPI)
    summary = await import_file(
        claims.sessions,
        KeyStore(key_provider(claims.settings)),
        BlobStore.from_settings(claims.settings),
        SecretResolver(claims.settings.secrets_dir),
        data,
        actor=operator_principal("remit import"),
        request=RequestInfo(request_id="test", trace_id=""),
    )
    [left] = summary.unassigned
    url = f"/admin/unassigned-remittances/{left.queued_id}/route"
    # No practice's staff sees it: no biller uploaded it for their practices.
    supervisor = await make_staff(Role.SUPERVISOR, practice)
    assert (await supervisor.get("/billing/unassigned-remittances")).json() == []
    assert (await supervisor.post(url, json={"tenant": practice.slug})).status_code == 403
    # An admin without a second factor is refused; with one, lists and routes it.
    assert (await (await make_staff(Role.ADMIN)).get("/admin/unassigned-remittances")).status_code == 403
    admin = await make_staff(Role.ADMIN, mfa=True)
    listed = (await admin.get("/admin/unassigned-remittances")).json()
    assert str(left.queued_id) in [q["id"] for q in listed]
    unknown = await admin.post(url, json={"tenant": "no-such-practice"})
    assert unknown.status_code == 422, unknown.text
    routed = await admin.post(url, json={"tenant": practice.slug})
    assert routed.status_code == 200, routed.text
    assert routed.json()["result"]["posted"] == 1
    assert (await admin.post(url, json={"tenant": practice.slug})).status_code == 409
    assert (await intake.get(f"/claims/{claim.id}/ledger")).json()["insurance_balance_cents"] == 0


async def test_the_same_file_from_another_practices_biller_widens_who_may_route_it(
    *,
    claims: Claims,
    intake: Api,
    practice: Tenant,
    other_practice: Tenant,
    make_staff: MakeStaff,
) -> None:
    claim, lines = await submitted_claim(claims, intake, practice)
    data = era_file(paid_in_part(claim, lines), trace="EFT-Q3", control=43, npi=UNKNOWN_NPI)
    ids = []
    for tenant in (practice, other_practice):
        biller = await make_staff(Role.BILLER, tenant)
        headers = biller.headers() | {"Content-Type": "application/edi-x12"}
        sent = await biller.client.post("/api/v1/billing/remittances", content=data, headers=headers)
        ids.append(sent.json()["unassigned"][0]["queued_id"])
    assert ids[0] == ids[1]
    theirs = await make_staff(Role.SUPERVISOR, other_practice)
    assert [q["id"] for q in (await theirs.get("/billing/unassigned-remittances")).json()] == [ids[0]]


async def test_a_payment_routed_by_hand_is_still_refused_as_a_duplicate(
    *,
    claims: Claims,
    intake: Api,
    practice: Tenant,
    make_staff: MakeStaff,
) -> None:
    claim, lines = await submitted_claim(claims, intake, practice)
    paid = paid_in_part(claim, lines)
    biller = await make_staff(Role.BILLER, practice)
    headers = biller.headers() | {"Content-Type": "application/edi-x12"}
    url = "/api/v1/billing/remittances"
    npi = practice.manifest.billing_provider.npi
    posted = await biller.client.post(
        url, content=era_file(paid, trace="EFT-Q4", control=44, npi=npi), headers=headers
    )
    assert posted.json()["posted"] == 1
    # The same payment (TRN02, payer, amount) in another file naming no practice: queued, then routed.
    again = era_file(paid, trace="EFT-Q4", control=45, npi=UNKNOWN_NPI)
    queued_id = (await biller.client.post(url, content=again, headers=headers)).json()["unassigned"][0][
        "queued_id"
    ]
    supervisor = await make_staff(Role.SUPERVISOR, practice)
    routed = await supervisor.post(
        f"/billing/unassigned-remittances/{queued_id}/route", json={"tenant": practice.slug}
    )
    assert routed.status_code == 200, routed.text
    result = routed.json()["result"]
    assert (result["posted"], [d["trace_number"] for d in result["duplicates"]]) == (0, ["EFT-Q4"])
    assert (await intake.get(f"/claims/{claim.id}/ledger")).json()["insurance_balance_cents"] == 0

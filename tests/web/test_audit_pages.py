"""The auditor console's pages over the test client, signed in with a cookie: search with results and export
links, a patient's timeline and disclosures, a person's timeline, anomalies, verification; an auditor of
practice A sees nothing of B; a coder is refused; a signed-out browser goes to the login."""

from __future__ import annotations

import uuid

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import AuditEvent
from rcm.tenancy.models import Tenant
from tests.audit.conftest import person_event, write_together
from tests.identity.conftest import make_user
from tests.web.support import browser_login

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]


async def _event(sessions: Sessions, tenant: Tenant, patient: uuid.UUID, actor: uuid.UUID) -> AuditEvent:
    event = person_event(tenant.id, actor, patient, "statement.download", resource_type="statement")
    await write_together(sessions, tenant.id, [event])
    return event


async def test_the_auditor_pages(
    client: Client,
    sessions: Sessions,
    control_sessions: Sessions,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    auditor = await make_user(control_sessions, ["auditor"], home_tenant=tenant)
    patient, biller = uuid.uuid4(), uuid.uuid4()
    mine = await _event(sessions, tenant, patient, biller)
    theirs_patient = uuid.uuid4()
    theirs = await _event(sessions, other_tenant, theirs_patient, biller)
    browser = await browser_login(client, auditor.email, next_path="/app/audit/")

    search = await browser.get(f"/app/audit/?patient_id={patient}&event_type=statement.download")
    assert search.status_code == 200, search.text
    assert "statement.download" in search.text
    assert f'href="/app/audit/patients/{patient}"' in search.text
    assert f"/api/v1/audit/events.csv?patient_id={patient}" in search.text  # the export keeps the filters
    # The form sends its empty fields too: blank is "any".
    blank = await browser.get("/app/audit/?actor_email=&patient_id=&action=&outcome=&since=&until=&tenant=")
    assert blank.status_code == 200
    bad_day = await browser.get("/app/audit/?since=yesterday")
    assert bad_day.status_code == 422
    assert "query:since" in bad_day.text
    everything = await browser.get("/app/audit/")
    assert str(other_tenant.id) not in everything.text
    # The export link works with the page's cookie, with the same filters.
    exported = await browser.get(f"/api/v1/audit/events.csv?patient_id={patient}")
    assert exported.status_code == 200
    assert str(mine.id) in exported.text

    record_page = await browser.get(f"/app/audit/patients/{patient}")
    assert record_page.status_code == 200
    assert "Accounting of disclosures" in record_page.text
    assert "file download" in record_page.text
    assert f'href="/app/audit/users/{biller}"' in record_page.text
    person = await browser.get(f"/app/audit/users/{biller}")
    assert f'href="/app/audit/patients/{patient}"' in person.text
    assert str(theirs_patient) not in person.text  # the other practice's patient, though the same person
    assert str(theirs.id) not in (await browser.get(f"/app/audit/patients/{theirs_patient}")).text

    anomalies = await browser.get("/app/audit/anomalies")
    assert anomalies.status_code == 200
    assert "The rules" in anomalies.text
    assert "after hours" in anomalies.text
    verify = await browser.get("/app/audit/verify")
    assert "Verify the chains now" in verify.text
    assert '<form method="post" action="/app/audit/verify">' in verify.text
    assert "/app/audit/?event_type=audit.verify" in verify.text  # the earlier verifications
    assert "Chains verified" not in verify.text  # only when asked
    assert "Chains verified" not in (await browser.get("/app/audit/verify?run=true")).text  # never on a GET
    # A cross-site form posts the cookie without the token: refused, nothing verified.
    forged = await client.post("/app/audit/verify", headers=browser.headers(csrf=False))
    assert forged.status_code == 403
    assert "Chains verified" not in forged.text
    ran = await client.post("/app/audit/verify", headers=browser.headers())
    assert ran.status_code == 200, ran.text
    assert "Chains verified" in ran.text
    assert str(tenant.id) in ran.text
    assert str(other_tenant.id) not in ran.text
    history = await browser.get("/app/audit/?event_type=audit.verify")  # the page's link: who verified, when
    assert history.status_code == 200
    assert "<td>audit.verify</td>" in history.text


async def test_others_are_refused_the_auditor_pages(
    client: Client, control_sessions: Sessions, tenant: Tenant
) -> None:
    signed_out = await client.get("/app/audit/", follow_redirects=False)
    assert signed_out.status_code == 303
    assert signed_out.headers["location"].startswith("/login")
    for roles in (["coder"], ["practice_owner"]):
        person = await make_user(control_sessions, roles, home_tenant=tenant if roles != ["coder"] else None)
        browser = await browser_login(client, person.email)
        for path in ("/app/audit/", f"/app/audit/patients/{uuid.uuid4()}", "/app/audit/anomalies"):
            refused = await browser.get(path)
            assert refused.status_code == 403, path
            assert "You may not open this page" in refused.text

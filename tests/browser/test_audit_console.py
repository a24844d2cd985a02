"""In Debian's chromium: an auditor signs in, searches the access log by patient, opens the patient's record
(timeline and disclosures, screenshot checked), the person's timeline, the anomalies (a break-glass flag with
its rule), verifies the chain with the button, and downloads the CSV export of the search."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.tenancy.models import Tenant
from tests.audit.conftest import person_event, write_together
from tests.browser.conftest import check_screenshot, log_in
from tests.identity.conftest import make_user

if TYPE_CHECKING:
    from playwright.async_api import Page

Sessions = async_sessionmaker[AsyncSession]


async def test_an_auditor_works_the_console(  # noqa: PLR0917 - fixtures
    page: Page,
    live_url: str,
    tenant: Tenant,
    sessions: Sessions,
    control_sessions: Sessions,
    screenshots: Path,
) -> None:
    auditor = await make_user(control_sessions, ["auditor"], home_tenant=tenant)
    patient, biller, grant = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    events = [
        person_event(tenant.id, biller, patient, "statement.download", resource_type="statement"),
        person_event(
            tenant.id, biller, patient, detail={"access": "break_glass", "break_glass_grant": str(grant)}
        ),
    ]
    await write_together(sessions, tenant.id, events)

    await log_in(page, auditor.email, next_path="/app/audit/")
    assert page.url == f"{live_url}/app/audit/"
    await page.get_by_label("Patient id").fill(str(patient))
    await page.get_by_role("button", name="Search").click()
    await page.wait_for_load_state("load")
    results = page.get_by_role("table", name="Events, newest first")
    assert "statement.download" in await results.inner_text()
    assert "patient.read" in await results.inner_text()

    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="CSV").click()
    download = await download_info.value
    saved = screenshots / "audit-export.csv"
    await download.save_as(str(saved))
    exported = saved.read_text()
    assert exported.startswith("tenant_id,seq,")
    assert all(str(e.id) in exported for e in events)

    await page.get_by_role("link", name=str(patient)).first.click()
    await page.wait_for_url(f"{live_url}/app/audit/patients/{patient}")
    main = await page.locator("main").inner_text()
    assert "Accounting of disclosures" in main
    assert "file download" in main
    assert "break glass" in main
    shot = screenshots / "audit-patient.png"
    await page.screenshot(path=str(shot))
    check_screenshot(shot)

    await page.get_by_role("link", name=str(biller)).first.click()
    await page.wait_for_url(f"{live_url}/app/audit/users/{biller}")
    assert (
        str(patient)
        in await page.get_by_role("table", name="Patient records this person touched").inner_text()
    )

    await page.get_by_role("link", name="Anomalies").click()
    await page.wait_for_url(f"{live_url}/app/audit/anomalies")
    flags = await page.get_by_role("table", name="Flags, newest first").inner_text()
    assert "break glass" in flags
    assert "any use of break-glass" in flags  # the rule that raised it
    shot = screenshots / "audit-anomalies.png"
    await page.screenshot(path=str(shot))
    check_screenshot(shot)

    await page.get_by_role("link", name="Verify").click()
    await page.get_by_role("button", name="Verify the chains now").click()
    await page.wait_for_load_state("load")
    chains = await page.get_by_role("table", name="Chains verified").inner_text()
    assert str(tenant.id) in chains
    assert "intact" in chains

"""The owner's dashboard in Debian's chromium: log in, open the dashboard on the constructed March
(tests/reporting), click a chart bar and a KPI tile through to the claims behind them (and a bar by
keyboard), download the cash-flow CSV and read it, save a view and reopen it; each screen's screenshot is
checked together with the page's text at that moment, and the page fits a 1366x768 laptop screen."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.tenancy.models import Tenant
from tests.browser.conftest import VIEWPORT, check_screenshot, log_in
from tests.identity.conftest import make_user
from tests.reporting.scenario import Scenario
from tests.reporting.test_kpis import march, noise
from tests.support import Api

if TYPE_CHECKING:
    from playwright.async_api import Page

Sessions = async_sessionmaker[AsyncSession]
MARCH = "date_from=2025-03-01&date_to=2025-03-31&grain=week"


async def shot(page: Page, screenshots: Path, name: str) -> str:
    """A checked screenshot of the viewport, and the main content's text as it was when taken."""
    path = screenshots / f"{name}.png"
    await page.screenshot(path=str(path))
    check_screenshot(path)
    return await page.locator("main").inner_text()


async def fits_the_screen(page: Page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= VIEWPORT["width"], f"the page scrolls sideways ({width}px)"


async def test_dashboard_drill_down_export_and_saved_view(
    *,
    page: Page,
    live_url: str,
    tenant: Tenant,
    practice_api: Api,
    other_practice_api: Api,
    control_sessions: Sessions,
    owner_engine: AsyncEngine,
    screenshots: Path,
) -> None:
    await march(Scenario(owner_engine, practice_api))
    await noise(Scenario(owner_engine, other_practice_api))
    owner = await make_user(control_sessions, ["practice_owner"], home_tenant=tenant)
    home = f"/app/t/{tenant.slug}"
    await log_in(page, owner.email, next_path=f"{home}?{MARCH}")
    assert page.url == f"{live_url}{home}?{MARCH}"

    # The dashboard: tiles, charts and tables, on one laptop screen's width.
    text = await shot(page, screenshots, "dashboard")
    assert f"{tenant.name}: dashboard" in text
    assert "Key performance indicators" in text
    assert "Initial denial rate" in text
    assert "33.3%" in text  # one denial of three claims adjudicated in March
    await fits_the_screen(page)
    assert await page.locator("svg.rcm-chart").count() == 3
    last_tile = await page.locator(".tile").last.bounding_box()
    assert last_tile is not None
    assert last_tile["y"] + last_tile["height"] <= VIEWPORT["height"], "every KPI tile is above the fold"
    whole = screenshots / "dashboard-full.png"
    await page.screenshot(path=str(whole), full_page=True)

    # A KPI's definition opens from the keyboard (a details element).
    summary = page.locator("#kpi-denial_rate summary")
    await summary.focus()
    await page.keyboard.press("Enter")
    assert (
        "Claims whose first 835 adjudication falls in the period"
        in await page.locator("#kpi-denial_rate details").inner_text()
    )

    # Click a bar: the week of March 10's payer payments (claim A's $80.00 on March 12).
    bar = page.locator('#cash-flow-chart a[aria-label="Payer payments, Wk Mar 10: $80.00"]')
    await bar.click()
    await page.wait_for_url("**/claims?**")
    text = await shot(page, screenshots, "drill-cash-flow")
    assert "Ledger entries: payer payments, 2025-03-10 to 2025-03-16" in text
    assert "$80.00" in text
    assert "DEMO-MCR" in text or "Demo Medicare" in text
    assert "Testy" not in text  # no patient names
    rows = page.locator("table.drill tbody tr")
    assert await rows.count() == 1

    # Back, and through a KPI tile: the one claim denied in March.
    await page.go_back()
    await page.locator("#kpi-denial_rate .value a").click()
    await page.wait_for_url("**/claims?**key=denial_rate**")
    text = await shot(page, screenshots, "drill-kpi")
    assert "Initial denial rate, 2025-03-01 to 2025-03-31: numerator" in text
    assert "2025-03-05" in text
    assert await rows.count() == 1

    # By keyboard: focus an AR-aging segment (a link inside the SVG) and press Enter.
    await page.go_back()
    segment = page.locator('#ar-aging-chart a[aria-label*="120+"]').first
    await segment.focus()
    assert await page.evaluate(
        "document.activeElement.getAttribute('aria-label')"
    ) == await segment.get_attribute("aria-label")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/claims?**bucket=120%2B**")
    text = await page.locator("main").inner_text()
    assert "Open claims as of 2025-03-31, 120+ days since date of service" in text
    assert "2024-11-15" in text

    # Export: the cash-flow CSV downloads and holds March's figures (charges $450.00 in all).
    await page.go_back()
    async with page.expect_download() as waiting:
        await page.get_by_role("link", name="Cash flow (CSV)").click()
    download = await waiting.value
    assert download.suggested_filename == "cash-flow.csv"
    body = await asyncio.to_thread(Path(await download.path()).read_text)
    table = list(csv.DictReader(io.StringIO(body)))
    total = next(r for r in table if r["group"] == "total")
    assert total["charges_usd"] == "450.00"
    assert total["payments_usd"] == "230.00"

    # Save the view (weekly, March), open the dashboard plain, and reopen the view from the list.
    await page.get_by_label("Save this view as").fill("March by week")
    await page.get_by_role("button", name="Save view").click()
    await page.wait_for_load_state("load")
    await page.goto(home)
    assert await page.locator("#grain").input_value() == "month"
    await page.get_by_role("link", name="March by week").click()
    await page.wait_for_load_state("load")
    assert await page.locator("#grain").input_value() == "week"
    assert await page.locator("#date_from").input_value() == "2025-03-01"
    text = await shot(page, screenshots, "saved-view")
    assert "March by week" in text
    assert "33.3%" in text

"""The dashboard pages over the real app, as a signed-in owner's browser sees them (the test client carrying
the session cookie): KPI tiles, charts whose marks link to the claims behind them, the drill-down list,
exports, saved views made and deleted by form, and the supervisor's and operator's pages."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from html import unescape
from urllib.parse import parse_qs, urlsplit

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.kit.db import platform_transaction
from rcm.kit.tenant import TenantId
from rcm.tenancy.models import Tenant
from rcm.tenancy.service import assign_staff
from tests.identity.conftest import make_user
from tests.reporting.scenario import Scenario
from tests.reporting.test_kpis import BCX, march, noise
from tests.support import Api, encounter_payload
from tests.web.support import BrowserSession, browser_login

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]
MARCH = "date_from=2025-03-01&date_to=2025-03-31"
_SVG = re.compile(r"<svg\b.*?</svg>", re.DOTALL)
_HREF = re.compile(r'href="([^"]+)"')


def charts_of(html: str) -> dict[str, ET.Element]:
    found = {}
    for markup in _SVG.findall(html):
        root = ET.fromstring(markup)  # noqa: S314 - our own page
        found[root.get("id", "")] = root
    return found


def chart_links(chart: ET.Element) -> list[tuple[str, str]]:
    return [(a.get("aria-label", ""), a.get("href", "")) for a in chart.iter("{http://www.w3.org/2000/svg}a")]


async def owner_browser(
    client: Client, tenant: Tenant, control_sessions: Sessions, path: str
) -> BrowserSession:
    owner = await make_user(control_sessions, ["practice_owner"], home_tenant=tenant)
    return await browser_login(client, owner.email, next_path=path)


async def test_the_dashboard_shows_every_figure_and_drills_down(
    *,
    client: Client,
    tenant: Tenant,
    practice_api: Api,
    other_practice_api: Api,
    control_sessions: Sessions,
    owner_engine: AsyncEngine,
) -> None:
    await march(Scenario(owner_engine, practice_api))
    await noise(Scenario(owner_engine, other_practice_api))
    home = f"/app/t/{tenant.slug}"
    browser = await owner_browser(client, tenant, control_sessions, home)
    response = await browser.get(f"{home}?{MARCH}&grain=week&group_by=payer")
    assert response.status_code == 200, response.text
    html = response.text
    for text in (
        "Key performance indicators",
        "Initial denial rate",
        "Net collection rate",
        "Cash forecast",
        "Accounts receivable aging",
        "Saved views",
        "This period against the previous one",
    ):
        assert text in html, text
    # The denial rate of the constructed March: 1 of 3 claims adjudicated.
    assert "33.3%" in html

    charts = charts_of(html)
    assert set(charts) == {"cash-flow-chart", "ar-aging-chart", "forecast-chart"}
    cash_links = chart_links(charts["cash-flow-chart"])
    assert cash_links, "every bar is a link"
    # Drill from a bar: the week of 2025-03-10's payments (A's 8000 on 03-12) lists A's payment entry.
    label, href = next((lbl, h) for lbl, h in cash_links if lbl.startswith("Payer payments, Wk Mar 10"))
    assert label == "Payer payments, Wk Mar 10: $80.00"
    drilled = await browser.get(unescape(href))
    assert drilled.status_code == 200, drilled.text
    assert "Ledger entries: payer payments, 2025-03-10 to 2025-03-16" in drilled.text
    assert "$80.00" in drilled.text
    assert "Fakename" not in drilled.text
    assert "Testy" not in drilled.text

    # Drill from the AR-aging chart: Blue Cross's 120+ segment is claim D (DOS 2024-11-15).
    aging_links = chart_links(charts["ar-aging-chart"])
    segment = next(h for lbl, h in aging_links if "120+" in lbl and "$300.00" in lbl)
    query = parse_qs(urlsplit(unescape(segment)).query)
    assert query["bucket"] == ["120+"]
    assert query["payer"] == [BCX]
    assert query["set"] == ["open"]
    old = await browser.get(unescape(segment))
    assert old.status_code == 200
    assert "2024-11-15" in old.text
    assert "$300.00" in old.text

    # A KPI tile drills into its numerator's claims: the one claim denied.
    tile = re.search(r'id="kpi-denial_rate".*?<p class="value"><a href="([^"]+)"', html, re.DOTALL)
    assert tile is not None
    denied = await browser.get(unescape(tile.group(1)))
    assert denied.status_code == 200
    assert "Initial denial rate, 2025-03-01 to 2025-03-31: numerator" in denied.text
    assert denied.text.count("<tr>") == 2  # the header and claim C
    assert "2025-03-05" in denied.text

    # Exports are the reports' own routes, reached with the session cookie.
    csv_href = next(unescape(h) for h in _HREF.findall(html) if "/cash-flow.csv" in h)
    exported = await browser.get(csv_href)
    assert exported.status_code == 200
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows
    assert any("DEMO-MCR" in ",".join(r) for r in rows)


async def test_saving_reopening_and_deleting_a_view_by_form(
    client: Client, tenant: Tenant, control_sessions: Sessions
) -> None:
    home = f"/app/t/{tenant.slug}"
    browser = await owner_browser(client, tenant, control_sessions, home)
    form = {
        "_csrf": browser.csrf,
        "name": "Weekly by payer",
        "report": "dashboard",
        "date_from": "2025-03-01",
        "date_to": "2025-03-31",
        "grain": "week",
        "group_by": "payer",
        "basis": "service_date",
    }
    saved = await client.post(f"{home}/views", data=form, headers=browser.headers(csrf=False))
    assert saved.status_code == 303, saved.text
    reopened = saved.headers["location"]
    assert parse_qs(urlsplit(reopened).query)["grain"] == ["week"]
    page = await browser.get(reopened)
    assert page.status_code == 200
    assert "Weekly by payer" in page.text
    assert 'value="2025-03-01"' in page.text
    assert '<option value="week" selected>' in page.text

    # Without the CSRF token the same form is refused.
    forged = await client.post(
        f"{home}/views", data={**form, "_csrf": "forged"}, headers=browser.headers(csrf=False)
    )
    assert forged.status_code == 403

    # A parameter outside the allow-list is refused, the value not echoed.
    bad = await client.post(
        f"{home}/views", data={**form, "patient": "Jane Roe"}, headers=browser.headers(csrf=False)
    )
    assert bad.status_code == 422
    assert "Jane" not in bad.text

    view_id = re.search(rf'action="{home}/views/([0-9a-f-]+)/delete"', page.text)
    assert view_id is not None
    gone = await client.post(
        f"{home}/views/{view_id.group(1)}/delete",
        data={"_csrf": browser.csrf},
        headers=browser.headers(csrf=False),
    )
    assert gone.status_code == 303
    after = await browser.get(home)
    assert "Weekly by payer" not in after.text
    assert "No saved views yet." in after.text


async def test_another_practice_sees_404_on_every_page(
    client: Client, tenant: Tenant, other_tenant: Tenant, control_sessions: Sessions
) -> None:
    browser = await owner_browser(client, tenant, control_sessions, f"/app/t/{tenant.slug}")
    other = f"/app/t/{other_tenant.slug}"
    for path in (
        other,
        f"{other}/claims?set=open",
        f"/api/v1/tenants/{other_tenant.slug}/reports/ar-aging/claims",
        f"/api/v1/tenants/{other_tenant.slug}/reports/cash-flow.csv",
        f"/api/v1/tenants/{other_tenant.slug}/reports/views",
    ):
        answer = await browser.get(path)
        assert answer.status_code == 404, (path, answer.status_code)
    posted = await client.post(
        f"{other}/views",
        data={"_csrf": browser.csrf, "name": "x", "report": "dashboard"},
        headers=browser.headers(csrf=False),
    )
    assert posted.status_code == 404


async def test_the_supervisor_page_lists_queues_of_the_assigned_practices_only(
    client: Client, tenant: Tenant, other_tenant: Tenant, practice_api: Api, control_sessions: Sessions
) -> None:
    # An encounter of practice A waits in its coding queue.
    made = await practice_api.post("/encounters", encounter_payload())
    assert made.status_code == 201, made.text
    supervisor = await make_user(control_sessions, ["supervisor"])
    async with platform_transaction(control_sessions) as session:
        await assign_staff(session, TenantId(tenant.id), [supervisor.email])
    browser = await browser_login(client, supervisor.email, mfa=True)
    response = await browser.get("/app/supervisor")
    assert response.status_code == 200, response.text
    assert "Staff productivity and queues" in response.text
    assert f'href="/app/t/{tenant.slug}"' in response.text  # its queue row
    assert other_tenant.slug not in response.text
    # A practice owner may not open it.
    owner = await owner_browser(client, tenant, control_sessions, "/app")
    assert (await owner.get("/app/supervisor")).status_code == 403


async def test_the_operator_page_shows_every_practice_side_by_side(
    client: Client, tenant: Tenant, other_tenant: Tenant, control_sessions: Sessions
) -> None:
    operator = await make_user(control_sessions, ["operator"])
    browser = await browser_login(client, operator.email, mfa=True)
    response = await browser.get("/app/operator?period_from=2025-03-01&period_to=2025-03-31")
    assert response.status_code == 200, response.text
    assert tenant.name in response.text
    assert other_tenant.name in response.text
    assert "Initial denial rate" in response.text
    owner = await owner_browser(client, tenant, control_sessions, "/app")
    assert (await owner.get("/app/operator")).status_code == 403

"""In Debian's chromium: log in through the dev issuer's page, open the landing and a practice page (with
a screenshot checked), sign out, a form post without its CSRF token refused, a foreign next= ignored."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.tenancy.models import Tenant
from tests.browser.conftest import check_screenshot, log_in
from tests.identity.conftest import make_user

if TYPE_CHECKING:
    from playwright.async_api import Page

Sessions = async_sessionmaker[AsyncSession]


async def test_login_landing_practice_and_logout(
    page: Page, live_url: str, tenant: Tenant, control_sessions: Sessions, screenshots: Path
) -> None:
    owner = await make_user(control_sessions, ["practice_owner"], home_tenant=tenant)
    await page.goto("/app")
    # Signed out: the app sends the browser to the login, which goes on to the (only) issuer's page.
    assert "/dev/oidc/authorize" in page.url
    await log_in(page, owner.email)
    assert page.url == f"{live_url}/app"
    assert await page.get_by_role("heading", level=1).inner_text() == "Your practices"
    await page.get_by_role("link", name=tenant.name).click()
    await page.wait_for_url(f"{live_url}/app/t/{tenant.slug}")
    assert "Key performance indicators" in await page.locator("main").inner_text()
    assert (await page.get_by_role("heading", level=1).inner_text()).startswith(tenant.name)

    shot = screenshots / "practice.png"
    await page.screenshot(path=str(shot))
    check_screenshot(shot)
    text = await page.locator("body").inner_text()
    assert "Cash flow" in text
    assert "Sign out" in text

    # Keyboard: the first Tab reaches the skip link, which moves focus to the main content.
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to main content"

    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_load_state("load")
    assert "You are signed out" in await page.locator("main").inner_text()
    cookies = {c["name"] for c in await page.context.cookies()}
    assert "rcm_session" not in cookies
    await page.goto(f"/app/t/{tenant.slug}")
    assert "/dev/oidc/authorize" in page.url


async def test_a_form_post_without_its_csrf_token_is_refused(
    page: Page, live_url: str, control_sessions: Sessions
) -> None:
    person = await make_user(control_sessions, ["biller"])
    await log_in(page, person.email)
    assert page.url == f"{live_url}/app"
    # The browser's own cookies, a form without the token (as another site's form would send).
    forged = await page.context.request.post(f"{live_url}/logout", form={"reason": "csrf-test"})
    assert forged.status == 403
    await page.reload()
    assert await page.get_by_role("button", name="Sign out").is_visible()  # still signed in


async def test_login_ignores_a_next_that_leaves_the_site(
    page: Page, live_url: str, control_sessions: Sessions
) -> None:
    person = await make_user(control_sessions, ["biller"])
    await log_in(page, person.email, next_path="https://evil.example/phish")
    assert page.url == f"{live_url}/app"
    await log_in(page, person.email, next_path="//evil.example/phish")
    assert page.url == f"{live_url}/app"

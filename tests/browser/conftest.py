"""A real browser against the real app: Debian's chromium driven by Playwright's Python API.

Playwright's own browser builds are never downloaded: ``executable_path`` points at the system's chromium
(``apt-get install chromium``; ``.ci/run`` installs it). Without it, or without the playwright package, every
browser test is skipped with that reason. The app runs under uvicorn on a loopback port whose URL is its
``RCM_BASE_URL`` (the login's redirect URI is built from it), and people log in through the dev issuer's
page as anyone would. Screenshots go to a temporary directory and are checked by the tests.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
from PIL import Image

from rcm.app import create_app
from rcm.config import Settings
from tests.live import free_port, serving

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

VIEWPORT = {"width": 1366, "height": 768}


def chromium_executable() -> str | None:
    found = (
        os.environ.get("RCM_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    return found if found and Path(found).exists() else None


@pytest.fixture(scope="session")
def chromium() -> str:
    path = chromium_executable()
    if path is None:
        pytest.skip(
            "no chromium on this machine: `apt-get install chromium` (Debian's) runs the browser tests"
        )
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -e '.[dev]')")
    return path


@pytest.fixture(scope="session")
def live_url(chromium: str, settings: Settings) -> Iterator[str]:
    port = free_port()
    served = settings.model_copy(update={"base_url": f"http://127.0.0.1:{port}"})
    with serving(create_app(served), port=port) as url:
        yield url


@pytest.fixture(scope="session")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        # Chromium's sandbox needs user namespaces, which containers running as root often lack.
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        launched = await playwright.chromium.launch(executable_path=chromium, headless=True, args=args)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, live_url: str) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport=VIEWPORT, base_url=live_url)  # type: ignore[arg-type]
    opened = await context.new_page()
    yield opened
    await context.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


async def log_in(page: Page, email: str, *, mfa: bool = True, next_path: str = "/app") -> None:
    """Open a page as a signed-out person would: to the login, the dev issuer's form, and back."""
    await page.goto(f"/login?next={quote(next_path, safe='')}")
    await page.get_by_label("Email").fill(email)
    if mfa:
        await page.get_by_label("I used a second factor (MFA)").check()
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_load_state("load")


def check_screenshot(path: Path, **expected: Any) -> Image.Image:
    """A real picture of the page: a PNG of the viewport's size that is not one flat colour."""
    image = Image.open(path)
    assert image.format == "PNG"
    assert image.size == (VIEWPORT["width"], VIEWPORT["height"]), image.size
    colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 8, "the screenshot is (nearly) blank"
    return image

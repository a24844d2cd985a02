"""Logging in as a browser does, over the test client: /login, the dev issuer's page, /auth/callback.

httpx keeps no Secure cookie over plain http, so the cookies travel by hand here (exactly the values the
app set); the browser tests (tests/browser) let Chromium keep them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient

from rcm.identity.web_session import CSRF_HEADER, LOGIN_COOKIE, SESSION_COOKIE

_CSRF_INPUT = re.compile(r'name="_csrf" value="([^"]*)"')


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Name to value of every Set-Cookie of ``response`` (an expired cookie has the value "")."""
    out: dict[str, str] = {}
    for header in response.headers.get_list("set-cookie"):
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        out.update({name: morsel.value for name, morsel in parsed.items()})
    return out


def path_of(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@dataclass
class BrowserSession:
    """A signed-in browser: its session cookie and the CSRF token its pages carry."""

    client: AsyncTestClient[Litestar]
    cookie: str
    csrf: str

    @property
    def cookies(self) -> dict[str, str]:
        return {SESSION_COOKIE: self.cookie}

    def headers(self, *, csrf: bool = True) -> dict[str, str]:
        headers = {"Cookie": f"{SESSION_COOKIE}={self.cookie}"}
        if csrf:
            headers[CSRF_HEADER] = self.csrf
        return headers

    async def get(self, url: str) -> httpx.Response:
        return await self.client.get(url, headers=self.headers(csrf=False), follow_redirects=False)


async def start_login(
    client: AsyncTestClient[Litestar], next_path: str = "/app"
) -> tuple[str, dict[str, str]]:
    """GET /login: the dev issuer's authorize URL (path and query) and the login cookie."""
    response = await client.get("/login", params={"next": next_path}, follow_redirects=False)
    assert response.status_code == 303, response.text
    cookies = set_cookies(response)
    assert cookies.get(LOGIN_COOKIE)
    return path_of(response.headers["location"]), {LOGIN_COOKIE: cookies[LOGIN_COOKIE]}


async def dev_issuer_code(client: AsyncTestClient[Litestar], authorize: str, email: str, *, mfa: bool) -> str:
    """The dev issuer's page, filled in: the callback URL (path and query) it redirects to."""
    page = await client.get(authorize)
    assert page.status_code == 200, page.text
    fields = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    form = {**fields, "email": email, **({"mfa": "on"} if mfa else {})}
    response = await client.post("/dev/oidc/authorize", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text
    return path_of(response.headers["location"])


async def browser_login(
    client: AsyncTestClient[Litestar], email: str, *, mfa: bool = False, next_path: str = "/app"
) -> BrowserSession:
    authorize, login_cookie = await start_login(client, next_path)
    callback = await dev_issuer_code(client, authorize, email, mfa=mfa)
    response = await client.get(callback, headers=_cookie_header(login_cookie), follow_redirects=False)
    assert response.status_code == 303, response.text
    assert path_of(response.headers["location"]) == next_path
    cookie = set_cookies(response)[SESSION_COOKIE]
    landing = await client.get(
        "/app", headers=_cookie_header({SESSION_COOKIE: cookie}), follow_redirects=False
    )
    assert landing.status_code == 200, landing.text
    match = _CSRF_INPUT.search(landing.text)
    assert match is not None
    return BrowserSession(client, cookie, match.group(1))


def _cookie_header(cookies: dict[str, str]) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}

"""Server-rendered pages for people in a browser: login, the landing page and the per-practice pages.

Pages are Litestar route handlers that return ``Template``s (Jinja, autoescaped) under ``/app``; they use
the same Principal, scopes and tenant scopes as the API (a browser session cookie instead of a Bearer token).
How to add a page: see ``rcm.web.render`` (and CONTRACT-web.md at the merge).
"""

"""What every page handler uses: ``page()`` renders a template inside the base layout with the caller and
the session's CSRF token; ``PAGE_OPT`` marks a route as a page (anonymous callers go to the login page);
``PAGE_EXCEPTION_HANDLERS`` render refusals as HTML pages with the same status the API would answer."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Template
from litestar.types import ExceptionHandlersMap

from rcm.identity.middleware import PAGE_OPT_KEY, current_web_session
from rcm.identity.principal import Principal
from rcm.identity.web_session import CSRF_FIELD
from rcm.kit.errors import RCMError

PAGE_OPT = {PAGE_OPT_KEY: True}
_TITLES = {
    400: "The request was not understood",
    401: "Please sign in",
    403: "You may not open this page",
    404: "Not found",
    409: "Conflict",
    422: "Some fields need attention",
    429: "Too many requests",
}


def page(
    request: Request[Any, Any, Any],
    template: str,
    *,
    title: str,
    status_code: int = 200,
    **context: Any,
) -> Template:
    """``template`` (which extends ``base.html``) with what the layout needs: the page title, the signed-in
    person, and ``csrf_field``/``csrf_token`` for every form that posts (``{{ csrf_form_field() }}`` writes
    the hidden field)."""
    session = current_web_session(request)
    user = request.scope.get("user")
    return Template(
        template,
        context={
            "title": title,
            "principal": user if isinstance(user, Principal) else None,
            "csrf_field": CSRF_FIELD,
            "csrf_token": session.csrf if session is not None else "",
            **context,
        },
        status_code=status_code,
    )


def _error_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    status = getattr(exc, "status_code", 500)
    status = status if isinstance(status, int) and 400 <= status < 600 else 500
    # Not found and not yours are one answer here as in the API. A refused input is named as the API's
    # problem body names it (the parameter or field and what is wrong), never with the value sent.
    detail = exc.detail if isinstance(exc, RCMError) and status != 404 else ""
    errors = [(e.pointer, e.detail) for e in exc.errors] if isinstance(exc, RCMError) else []
    return page(
        request,
        "error.html",
        title=_TITLES.get(status, "Something went wrong"),
        status_code=status,
        detail=detail,
        errors=errors,
    )


PAGE_EXCEPTION_HANDLERS: ExceptionHandlersMap = {RCMError: _error_page, HTTPException: _error_page}

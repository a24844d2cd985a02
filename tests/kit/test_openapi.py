"""The OpenAPI finishing is driven by the route table: a route nobody has written yet comes out right.

A small app with routes of every shape (guarded, public, with a body, path parameters, a required header,
its own form, an enum used in several places) is finished by the same code as the real app.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec
import pytest
from litestar import Controller, Litestar, get, post
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody

from rcm.kit.openapi import FORM_BODY_OPT, OpenAPIPolicy, finish_openapi

Colour = Literal["red", "green", "blue"]


class Widget(msgspec.Struct):
    name: str
    colour: Colour


class WidgetCreate(msgspec.Struct):
    name: str
    colour: Colour


class Login(msgspec.Struct):
    kind: Annotated[str, msgspec.Meta(min_length=1)]


class Shade(StrEnum):
    LIGHT = "light"
    DARK = "dark"


async def needs_scope(_: ASGIConnection[Any, Any, Any, Any], __: BaseRouteHandler) -> None:
    return None


needs_scope.openapi_scopes = frozenset({"widgets:write"})  # type: ignore[attr-defined]


async def either_scope(_: ASGIConnection[Any, Any, Any, Any], __: BaseRouteHandler) -> None:
    return None


either_scope.openapi_scope_choices = (  # type: ignore[attr-defined]
    frozenset({"widgets:write"}),
    frozenset({"widgets:paint"}),
)

Key = Annotated[str | None, HeaderParameter(name="Idempotency-Key")]


@post("/tenants/{slug:str}/widgets", guards=[needs_scope])
async def create_widget(slug: FromPath[str], data: JSONBody[WidgetCreate], key: Key = None) -> Widget:
    return Widget(name=data.name, colour=data.colour)


@post("/tenants/{slug:str}/widgets/{name:str}/paint", guards=[either_scope])
async def paint_widget(slug: FromPath[str], name: FromPath[str]) -> Widget:
    return Widget(name=name, colour="red")


@get("/tenants/{slug:str}/widgets")
async def list_widgets(
    slug: FromPath[str], colour: FromQuery[Colour | None] = None, shade: FromQuery[Shade | None] = None
) -> list[Widget]:
    return []


@get("/status", opt={"public": True})
async def status() -> dict[str, str]:
    return {}


@post("/login", opt={"public": True, FORM_BODY_OPT: Login}, status_code=200)
async def login() -> dict[str, str]:
    return {}


class GadgetController(Controller):
    path = "/gadgets"

    @get("/{gadget_id:int}")
    async def read(self, gadget_id: FromPath[int]) -> dict[str, int]:
        return {"id": gadget_id}

    @get("/{gadget_id:int}/parts", operation_id="listGadgetParts")
    async def parts(self, gadget_id: FromPath[int]) -> list[int]:
        return []


def _twin(path: str) -> Any:
    async def twin() -> dict[str, str]:
        return {}

    return get(path)(twin)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app = Litestar(
        [create_widget, paint_widget, list_widgets, status, login, GadgetController, _twin("/a"), _twin("/b")]
    )
    return finish_openapi(
        app,
        OpenAPIPolicy(
            public_opt_key="public",
            required_headers=frozenset({"Idempotency-Key"}),
            replay_header="Idempotent-Replayed",
            security_schemes={
                "oauth2": {"type": "oauth2", "flows": {}},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
            security=[{"oauth2": []}, {"bearer": []}],
            scoped_scheme="oauth2",
        ),
    )


def test_a_guarded_write_documents_what_it_can_answer(document: dict[str, Any]) -> None:
    operation = document["paths"]["/tenants/{slug}/widgets"]["post"]
    assert operation["security"] == [{"oauth2": ["widgets:write"]}, {"bearer": []}]
    assert sorted(operation["responses"]) == ["201", "400", "401", "403", "404", "413", "415", "422", "429"]
    problem = operation["responses"]["422"]["content"]["application/problem+json"]["schema"]
    assert problem == {"$ref": "#/components/schemas/Problem"}
    (header,) = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
    assert header["required"] is True
    assert header["schema"] == {"type": "string"}
    created = operation["responses"]["201"]["headers"]
    assert {"X-Request-ID", "RateLimit-Limit", "RateLimit-Remaining", "Idempotent-Replayed"} <= set(created)
    limited = operation["responses"]["429"]["headers"]
    assert {"Retry-After", "X-Request-ID", "RateLimit-Reset"} <= set(limited)
    assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]


def test_alternative_scopes_are_one_security_requirement_each(document: dict[str, Any]) -> None:
    operation = document["paths"]["/tenants/{slug}/widgets/{name}/paint"]["post"]
    assert operation["security"] == [
        {"oauth2": ["widgets:write"]},
        {"bearer": []},
        {"oauth2": ["widgets:paint"]},
    ]


def test_an_unguarded_read_has_no_403_and_inherits_the_bearer_requirement(document: dict[str, Any]) -> None:
    operation = document["paths"]["/tenants/{slug}/widgets"]["get"]
    assert "security" not in operation
    assert document["security"] == [{"oauth2": []}, {"bearer": []}]
    assert sorted(operation["responses"]) == ["200", "400", "401", "404", "422", "429"]


def test_a_public_route_says_so_and_has_no_401(document: dict[str, Any]) -> None:
    operation = document["paths"]["/status"]["get"]
    assert operation["security"] == []
    assert sorted(operation["responses"]) == ["200", "429"]
    assert "RateLimit-Limit" not in operation["responses"]["200"]["headers"]


def test_a_form_reading_handler_gets_its_form_documented(document: dict[str, Any]) -> None:
    operation = document["paths"]["/login"]["post"]
    form = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert form == {"$ref": "#/components/schemas/Login"}
    assert document["components"]["schemas"]["Login"]["required"] == ["kind"]
    assert sorted(operation["responses"]) == ["200", "400", "429"]


def test_an_enum_used_in_several_places_is_one_component(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["WidgetColour"] == {"enum": ["red", "green", "blue"], "type": "string"}
    assert schemas["Widget"]["properties"]["colour"] == {"$ref": "#/components/schemas/WidgetColour"}
    assert schemas["WidgetCreate"]["properties"]["colour"] == {"$ref": "#/components/schemas/WidgetColour"}
    (colour,) = [
        p for p in document["paths"]["/tenants/{slug}/widgets"]["get"]["parameters"] if p["name"] == "colour"
    ]
    assert colour["schema"] == {"oneOf": [{"$ref": "#/components/schemas/WidgetColour"}, {"type": "null"}]}
    # A real enum type is already litestar's own component and stays as it is.
    assert schemas["Shade"]["enum"] == ["light", "dark"]


def test_no_generated_examples(document: dict[str, Any]) -> None:
    import json

    assert '"examples"' not in json.dumps(document)


def test_operation_ids_name_the_controller_and_the_handler(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert paths["/gadgets/{gadget_id}"]["get"]["operationId"] == "gadgetRead"
    assert paths["/gadgets/{gadget_id}/parts"]["get"]["operationId"] == "listGadgetParts"  # its own choice
    assert paths["/tenants/{slug}/widgets"]["post"]["operationId"] == "createWidget"
    # Two handlers that would get the same name keep litestar's path-spelled ids.
    assert paths["/a"]["get"]["operationId"] != paths["/b"]["get"]["operationId"]
    assert "twin" not in (paths["/a"]["get"]["operationId"], paths["/b"]["get"]["operationId"])
    ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(ids) == len(set(ids))

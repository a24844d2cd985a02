"""Saved views: a person saves, lists, replaces, reads and deletes their own; parameters are allow-listed;
nobody else (a colleague of the same practice, another practice) sees them."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import Api

VIEWS = "/reports/views"


async def test_save_list_replace_and_delete(owner: Api, owner_engine: AsyncEngine) -> None:
    first = await owner.post(
        VIEWS,
        {
            "name": "Monthly by payer",
            "report": "cash_flow",
            "parameters": {"grain": "month", "group_by": "payer"},
        },
    )
    assert first.status_code == 201, first.text
    view = first.json()
    assert view["report"] == "cash_flow"
    assert view["parameters"] == {"grain": "month", "group_by": "payer"}
    assert view["href"] == f"/app/t/{owner.slug}?grain=month&group_by=payer#cash-flow"

    aging = await owner.post(VIEWS, {"name": "Aging by DOS", "report": "ar_aging", "parameters": {}})
    assert aging.status_code == 201
    listed = (await owner.get(VIEWS)).json()
    assert [v["name"] for v in listed] == ["Aging by DOS", "Monthly by payer"]

    # Saving under a taken name replaces the view and keeps its id.
    again = await owner.post(
        VIEWS,
        {
            "name": "Monthly by payer",
            "report": "cash_flow",
            "parameters": {"grain": "week", "date_from": "2026-01-01"},
        },
    )
    assert again.status_code == 200
    assert again.json()["id"] == view["id"]
    assert again.json()["parameters"] == {"grain": "week", "date_from": "2026-01-01"}
    read = await owner.get(f"{VIEWS}/{view['id']}")
    assert read.json()["parameters"] == {"grain": "week", "date_from": "2026-01-01"}

    gone = await owner.client.delete(owner.url(f"{VIEWS}/{view['id']}"), headers=owner.headers)
    assert gone.status_code == 204
    assert (await owner.get(f"{VIEWS}/{view['id']}")).status_code == 404
    assert [v["name"] for v in (await owner.get(VIEWS)).json()] == ["Aging by DOS"]
    again_gone = await owner.client.delete(owner.url(f"{VIEWS}/{view['id']}"), headers=owner.headers)
    assert again_gone.status_code == 404

    async with owner_engine.connect() as conn:
        events = (
            await conn.execute(
                text(
                    "SELECT event_type, action FROM rcm.audit_event WHERE tenant_id = :t"
                    " AND event_type LIKE 'saved_view.%' ORDER BY occurred_at, id"
                ),
                {"t": uuid.UUID(owner.tenant_id)},
            )
        ).all()
    assert [tuple(e) for e in events] == [
        ("saved_view.save", "C"),
        ("saved_view.save", "C"),
        ("saved_view.save", "U"),
        ("saved_view.delete", "D"),
    ]


async def test_parameters_outside_the_allow_list_are_refused(owner: Api) -> None:
    unknown = await owner.post(
        VIEWS, {"name": "x", "report": "kpis", "parameters": {"grain": "month", "patient_name": "Jane Doe"}}
    )
    assert unknown.status_code == 422
    pointers = {e["pointer"] for e in unknown.json()["errors"]}
    assert pointers == {"/parameters"}
    assert "Jane" not in unknown.text  # never echoed

    bad_value = await owner.post(
        VIEWS,
        {"name": "x", "report": "cash_flow", "parameters": {"grain": "fortnight", "date_from": "2026-13-01"}},
    )
    assert bad_value.status_code == 422
    assert {e["pointer"] for e in bad_value.json()["errors"]} == {
        "/parameters/grain",
        "/parameters/date_from",
    }

    bad_name = await owner.post(VIEWS, {"name": "<script>", "report": "kpis", "parameters": {}})
    assert bad_name.status_code in (400, 422)
    bad_report = await owner.post(VIEWS, {"name": "ok", "report": "patients", "parameters": {}})
    assert bad_report.status_code in (400, 422)
    assert (await owner.get(VIEWS)).json() == []


async def test_views_are_personal_and_per_practice(owner: Api, co_owner: Api, other_owner: Api) -> None:
    saved = await owner.post(VIEWS, {"name": "Mine", "report": "dashboard", "parameters": {"grain": "day"}})
    view_id = saved.json()["id"]

    # A colleague of the same practice: their own (empty) list, and my view is a 404 to read or delete.
    assert (await co_owner.get(VIEWS)).json() == []
    assert (await co_owner.get(f"{VIEWS}/{view_id}")).status_code == 404
    deleted = await co_owner.client.delete(co_owner.url(f"{VIEWS}/{view_id}"), headers=co_owner.headers)
    assert deleted.status_code == 404
    # The same name is theirs to use.
    theirs = await co_owner.post(VIEWS, {"name": "Mine", "report": "kpis", "parameters": {}})
    assert theirs.status_code == 201
    assert theirs.json()["id"] != view_id

    # Another practice's owner: my practice's routes are a 404, and through their own, my view is unknown.
    other = await other_owner.get(VIEWS, slug=owner.slug)
    assert other.status_code == 404
    assert (await other_owner.get(f"{VIEWS}/{view_id}")).status_code == 404
    assert (await other_owner.get(VIEWS)).json() == []
    assert [v["name"] for v in (await owner.get(VIEWS)).json()] == ["Mine"]


async def test_a_practice_system_has_no_views(practice_api: Api) -> None:
    answer = await practice_api.get(VIEWS)
    assert answer.status_code == 403


async def test_a_person_keeps_at_most_fifty_views(owner: Api) -> None:
    for n in range(50):
        made = await owner.post(VIEWS, {"name": f"View {n:02d}", "report": "kpis", "parameters": {}})
        assert made.status_code == 201, made.text
    over = await owner.post(VIEWS, {"name": "One too many", "report": "kpis", "parameters": {}})
    assert over.status_code == 409
    # Replacing one of the fifty is still fine, and the refused one was not kept.
    again = await owner.post(
        VIEWS, {"name": "View 07", "report": "dashboard", "parameters": {"grain": "day"}}
    )
    assert again.status_code == 200
    names = [v["name"] for v in (await owner.get(VIEWS)).json()]
    assert len(names) == 50
    assert "One too many" not in names

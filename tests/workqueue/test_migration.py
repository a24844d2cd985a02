"""Revision 0010_workqueue on a database that already holds coding items: each becomes an item about its
encounter, gets its "created" event, stays under forced RLS with the app's grants; the revision downgrades."""

from __future__ import annotations

import uuid

from alembic import command

from rcm.kit.migrations import alembic_config
from tests.identity.test_break_glass_migration import _sql, scratch_url

__all__ = ["scratch_url"]

BEFORE = "0009_strict_input"


def test_old_work_items_become_encounter_items_with_their_event(scratch_url: str) -> None:
    config = alembic_config(scratch_url)
    command.upgrade(config, BEFORE)
    tenant, item, encounter = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    _sql(
        scratch_url,
        "INSERT INTO rcm.tenant (id, slug, name) VALUES (:tenant, 'legacy-queue', 'Legacy')",
        # The encounter's own rows do not matter here: foreign keys are off for this superuser transaction.
        "SET LOCAL session_replication_role = replica",
        "INSERT INTO rcm.work_item (tenant_id, id, queue, encounter_id, status, priority, due_at)"
        " VALUES (:tenant, :item, 'coding', :encounter, 'open', 5, now() + interval '2 days')",
        tenant=tenant,
        item=item,
        encounter=encounter,
    )

    command.upgrade(config, "head")
    assert _sql(
        scratch_url,
        "SELECT kind, subject_type, subject_id, status, leased_by FROM rcm.work_item WHERE id = :item",
        item=item,
    ) == [("coding", "encounter", encounter, "open", None)]
    assert _sql(
        scratch_url,
        "SELECT e.event, e.status, e.created_at = i.created_at FROM rcm.work_item_event e"
        " JOIN rcm.work_item i ON (i.tenant_id, i.id) = (e.tenant_id, e.work_item_id)",
    ) == [("created", "open", True)]
    for table in ("work_item", "work_item_event"):
        assert _sql(
            scratch_url,
            "SELECT relrowsecurity, relforcerowsecurity, has_table_privilege('rcm_app', oid, 'INSERT')"
            " FROM pg_class WHERE relname = :table AND relnamespace = 'rcm'::regnamespace",
            table=table,
        ) == [(True, True, True)]
    assert _sql(
        scratch_url,
        "SELECT has_table_privilege('rcm_app', 'rcm.work_item_event', 'UPDATE'),"
        " has_table_privilege('rcm_app', 'rcm.work_item_event', 'DELETE')",
    ) == [(False, False)]

    # Down again: the encounter reference comes back from the subject (foreign keys checked: drop the
    # stand-in item first, as its encounter was never written).
    _sql(scratch_url, "DELETE FROM rcm.work_item_event", "DELETE FROM rcm.work_item")
    command.downgrade(config, BEFORE)
    assert _sql(
        scratch_url,
        "SELECT count(*) FROM information_schema.columns"
        " WHERE table_schema = 'rcm' AND table_name = 'work_item'"
        " AND column_name IN ('queue', 'encounter_id')",
    ) == [(2,)]
    command.upgrade(config, "head")

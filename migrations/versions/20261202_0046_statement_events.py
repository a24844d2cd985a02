"""Webhook events for patient statements.

Revision ID: 0046_statement_events
Revises: 0039_claim_payer_number
Create Date: 2026-12-02

- ``statement.ready`` (one per statement written: its id, run and patient ids, where to fetch its files) and
  ``statement_run.completed`` (a run's counts) join the event types a practice may subscribe to, so its
  patient portal or mail house learns of a statement without polling. Payloads carry ids and counts only:
  the receiver fetches the statement through the API, where the read is audited.

The DDL is frozen here as plain SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0046_statement_events"
down_revision = "0039_claim_payer_number"
branch_labels = None
depends_on = None

_BEFORE = "'encounter.status_changed', 'claim.status_changed', 'coder_query.created'"
_AFTER = f"{_BEFORE}, 'statement.ready', 'statement_run.completed'"


def _checks(events: str) -> None:
    op.execute(
        "ALTER TABLE rcm.webhook_subscription DROP CONSTRAINT ck_webhook_subscription_event_types,"
        " ADD CONSTRAINT ck_webhook_subscription_event_types"
        f" CHECK (cardinality(event_types) >= 1 AND event_types <@ ARRAY[{events}]::text[])"
    )
    op.execute(
        "ALTER TABLE rcm.webhook_delivery DROP CONSTRAINT ck_webhook_delivery_event_type,"
        f" ADD CONSTRAINT ck_webhook_delivery_event_type CHECK (event_type IN ({events}))"
    )


def upgrade() -> None:
    _checks(_AFTER)


def downgrade() -> None:
    op.execute(
        "DELETE FROM rcm.webhook_attempt a USING rcm.webhook_delivery d WHERE (a.tenant_id, a.delivery_id)"
        " = (d.tenant_id, d.id) AND d.event_type IN ('statement.ready', 'statement_run.completed')"
    )
    op.execute(
        "DELETE FROM rcm.webhook_delivery WHERE event_type IN ('statement.ready', 'statement_run.completed')"
    )
    op.execute(
        "UPDATE rcm.webhook_subscription SET event_types = array_remove(array_remove(event_types,"
        " 'statement.ready'), 'statement_run.completed')"
    )
    op.execute("DELETE FROM rcm.webhook_subscription WHERE cardinality(event_types) = 0")
    _checks(_BEFORE)

"""Submission outbox: the pending submission batch is the outbox record of its own sending.

Revision ID: 0023_submission_outbox
Revises: 0021_x12_files

``rcm.submission_batch`` gains what a relay and an at-least-once handler need: ``attempts`` (connector calls
spent), ``next_attempt_at`` (when the relay sends its message again: a backoff, a circuit's cool-down, or the
lease of a call in flight), ``last_error`` (connector, operation and reason words: never content) and
``receipt_reference`` (the clearinghouse's reference). Its status adds ``sending`` (committed before the
connector is called: a batch found in it after a crash is probed, never re-sent blindly) and ``dead`` (a
biller decides). Billing-queue items may now be about a submission batch (their dead letters). The DDL is
frozen here as plain SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0023_submission_outbox"
down_revision = "0021_x12_files"
branch_labels = None
depends_on = None

STATEMENTS = [
    "ALTER TABLE rcm.submission_batch DROP CONSTRAINT ck_submission_batch_status",
    """
    ALTER TABLE rcm.submission_batch
      ADD COLUMN attempts integer NOT NULL DEFAULT 0,
      ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
      ADD COLUMN last_error text,
      ADD COLUMN receipt_reference text,
      ADD CONSTRAINT ck_submission_batch_status
        CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'dead')),
      ADD CONSTRAINT ck_submission_batch_attempts CHECK (attempts >= 0)
    """,
    # What the relay reads across practices: batches still to send, by when they are due.
    "CREATE INDEX ix_submission_batch_due ON rcm.submission_batch (next_attempt_at)"
    " WHERE status IN ('pending', 'sending')",
    "ALTER TABLE rcm.work_item DROP CONSTRAINT ck_work_item_subject_type",
    """
    ALTER TABLE rcm.work_item ADD CONSTRAINT ck_work_item_subject_type
      CHECK (subject_type IN ('encounter', 'claim', 'remittance', 'eligibility_check', 'submission_batch'))
    """,
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DELETE FROM rcm.work_item WHERE subject_type = 'submission_batch'")
    op.execute("ALTER TABLE rcm.work_item DROP CONSTRAINT ck_work_item_subject_type")
    op.execute(
        "ALTER TABLE rcm.work_item ADD CONSTRAINT ck_work_item_subject_type"
        " CHECK (subject_type IN ('encounter', 'claim', 'remittance', 'eligibility_check'))"
    )
    op.execute("DROP INDEX rcm.ix_submission_batch_due")
    op.execute("UPDATE rcm.submission_batch SET status = 'pending' WHERE status = 'sending'")
    op.execute("UPDATE rcm.submission_batch SET status = 'failed' WHERE status = 'dead'")
    op.execute(
        """
        ALTER TABLE rcm.submission_batch
          DROP CONSTRAINT ck_submission_batch_status,
          DROP CONSTRAINT ck_submission_batch_attempts,
          DROP COLUMN attempts,
          DROP COLUMN next_attempt_at,
          DROP COLUMN last_error,
          DROP COLUMN receipt_reference,
          ADD CONSTRAINT ck_submission_batch_status CHECK (status IN ('pending', 'sent', 'failed'))
        """
    )

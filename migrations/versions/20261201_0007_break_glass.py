"""Break-glass as an emergency-access procedure: category, requested minutes, optional approval, revoker.

A grant waiting for a second approver has no window yet (``starts_at``/``expires_at`` NULL); the window
starts when it is approved (or at once when no approval is required) and is never longer than four hours.
The requester can never be the approver (checked here as well as in the service). The application role may
update only the columns of the grant's life cycle (approval, start, expiry, revocation), never who asked,
for what tenant, why, or for how long.

Grants from before this revision keep their window (``starts_at`` = ``created_at``) and get the category
``other``. The DDL is frozen here as SQL text.

Revision ID: 0007_break_glass
Revises: 0006_control_plane
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0007_break_glass"
down_revision = "0006_control_plane"
branch_labels = None
depends_on = None

_CATEGORIES = (
    "'patient_safety', 'system_outage', 'coverage_emergency', 'payer_deadline', 'legal_request', 'other'"
)

UPGRADE = [
    """
    ALTER TABLE rcm.break_glass_grant
        ADD COLUMN category text NOT NULL DEFAULT 'other',
        ADD COLUMN minutes integer,
        ADD COLUMN requires_approval boolean NOT NULL DEFAULT false,
        ADD COLUMN starts_at timestamptz,
        ADD COLUMN approved_by uuid,
        ADD COLUMN approved_at timestamptz,
        ADD COLUMN revoked_by uuid
    """,
    # RLS is forced on the owner too, and a migration has no tenant context: the backfill must see every
    # tenant's rows, so forcing is lifted for this one statement (inside the revision's transaction).
    "ALTER TABLE rcm.break_glass_grant NO FORCE ROW LEVEL SECURITY",
    """
    UPDATE rcm.break_glass_grant
       SET starts_at = created_at,
           minutes = GREATEST(1, LEAST(240, CEIL(EXTRACT(EPOCH FROM expires_at - created_at) / 60)))::integer
    """,
    "ALTER TABLE rcm.break_glass_grant FORCE ROW LEVEL SECURITY",
    "ALTER TABLE rcm.break_glass_grant ALTER COLUMN category DROP DEFAULT",
    "ALTER TABLE rcm.break_glass_grant ALTER COLUMN minutes SET NOT NULL",
    "ALTER TABLE rcm.break_glass_grant DROP CONSTRAINT ck_break_glass_grant_expiry",
    "ALTER TABLE rcm.break_glass_grant ALTER COLUMN expires_at DROP NOT NULL",
    "ALTER TABLE rcm.break_glass_grant ADD CONSTRAINT fk_break_glass_grant_approved_by_app_user"
    " FOREIGN KEY (approved_by) REFERENCES rcm.app_user (id)",
    "ALTER TABLE rcm.break_glass_grant ADD CONSTRAINT fk_break_glass_grant_revoked_by_app_user"
    " FOREIGN KEY (revoked_by) REFERENCES rcm.app_user (id)",
    f"ALTER TABLE rcm.break_glass_grant ADD CONSTRAINT ck_break_glass_grant_category"
    f" CHECK (category IN ({_CATEGORIES}))",
    "ALTER TABLE rcm.break_glass_grant ADD CONSTRAINT ck_break_glass_grant_minutes"
    " CHECK (minutes BETWEEN 1 AND 240)",
    # Emergency access is short by rule: at most four hours from the moment it starts.
    "ALTER TABLE rcm.break_glass_grant ADD CONSTRAINT ck_break_glass_grant_window CHECK ("
    " (starts_at IS NULL AND expires_at IS NULL)"
    " OR (starts_at IS NOT NULL AND expires_at > starts_at AND expires_at <= starts_at + interval '4 hours'))",
    # Approval is by someone else, and a grant that needs approval starts only once approved.
    "ALTER TABLE rcm.break_glass_grant ADD CONSTRAINT ck_break_glass_grant_approval CHECK ("
    " (approved_by IS NULL) = (approved_at IS NULL) AND approved_by IS DISTINCT FROM user_id"
    " AND (NOT requires_approval OR starts_at IS NULL OR approved_at IS NOT NULL))",
    "ALTER TABLE rcm.break_glass_grant ADD CONSTRAINT ck_break_glass_grant_revoker"
    " CHECK (revoked_by IS NULL OR revoked_at IS NOT NULL)",
    # The per-person limit counts a person's requests across tenants over the last day.
    "CREATE INDEX ix_break_glass_grant_requests ON rcm.break_glass_grant (user_id, created_at)",
    # Grants widen access, so only the control role writes them (a leaked app credential cannot grant itself
    # a practice), and even it may change only a grant's life cycle, never who asked, why or for how long.
    "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON rcm.break_glass_grant FROM rcm_app",
    "GRANT INSERT ON rcm.break_glass_grant TO rcm_control",
    "GRANT UPDATE (starts_at, expires_at, approved_by, approved_at, revoked_by, revoked_at)"
    " ON rcm.break_glass_grant TO rcm_control",
]

DOWNGRADE = [
    "REVOKE UPDATE (starts_at, expires_at, approved_by, approved_at, revoked_by, revoked_at)"
    " ON rcm.break_glass_grant FROM rcm_control",
    "REVOKE INSERT ON rcm.break_glass_grant FROM rcm_control",
    "GRANT INSERT, UPDATE ON rcm.break_glass_grant TO rcm_app",
    "DROP INDEX rcm.ix_break_glass_grant_requests",
    # Pending grants never started: they leave with the columns that describe them.
    "ALTER TABLE rcm.break_glass_grant NO FORCE ROW LEVEL SECURITY",
    "DELETE FROM rcm.break_glass_grant WHERE starts_at IS NULL",
    "ALTER TABLE rcm.break_glass_grant FORCE ROW LEVEL SECURITY",
    "ALTER TABLE rcm.break_glass_grant DROP CONSTRAINT ck_break_glass_grant_revoker",
    "ALTER TABLE rcm.break_glass_grant DROP CONSTRAINT ck_break_glass_grant_approval",
    "ALTER TABLE rcm.break_glass_grant DROP CONSTRAINT ck_break_glass_grant_window",
    "ALTER TABLE rcm.break_glass_grant DROP CONSTRAINT ck_break_glass_grant_minutes",
    "ALTER TABLE rcm.break_glass_grant DROP CONSTRAINT ck_break_glass_grant_category",
    "ALTER TABLE rcm.break_glass_grant ALTER COLUMN expires_at SET NOT NULL",
    "ALTER TABLE rcm.break_glass_grant ADD CONSTRAINT ck_break_glass_grant_expiry"
    " CHECK (expires_at > created_at AND expires_at <= created_at + interval '4 hours') NOT VALID",
    """
    ALTER TABLE rcm.break_glass_grant
        DROP COLUMN revoked_by,
        DROP COLUMN approved_at,
        DROP COLUMN approved_by,
        DROP COLUMN starts_at,
        DROP COLUMN requires_approval,
        DROP COLUMN minutes,
        DROP COLUMN category
    """,
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)

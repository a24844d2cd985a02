"""Control plane: only ``rcm_control`` writes signing keys, people's roles, staff assignments and API clients.

``rcm_app`` (every tenant request, every job) keeps SELECT on these tables and loses INSERT, UPDATE and
DELETE, so a leaked app credential or an SQL injection cannot publish a signing key (and forge tokens),
widen a role, assign itself to a practice or issue itself an API client. ``rcm_control`` is created by the
role bootstrap (``rcm.kit.bootstrap``) as a member of ``rcm_app``: it inherits what the app may do (RLS
still applies to it) and gets the control-plane writes here.

Break-glass grants (``break_glass_grant``) are left as they are: their routes are being rewritten, and the
grant writes move to the control role together with them.

The DDL is frozen here as plain SQL: no import of a live helper that may change later.

Revision ID: 0006_control_plane
Revises: 0005_intake
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0006_control_plane"
down_revision = "0005_intake"
branch_labels = None
depends_on = None

# (table, what rcm_control may write). rcm_app keeps SELECT on each (granted by the revision that made it).
_CONTROL_WRITES = (
    ("signing_key", "INSERT, UPDATE"),
    ("app_user", "INSERT, UPDATE"),
    ("staff_assignment", "INSERT, DELETE"),
    ("api_client", "INSERT, UPDATE"),
)


def upgrade() -> None:
    for table, privileges in _CONTROL_WRITES:
        op.execute(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON rcm.{table} FROM rcm_app")
        op.execute(f"GRANT {privileges} ON rcm.{table} TO rcm_control")


def downgrade() -> None:
    previous = {
        "signing_key": "INSERT, UPDATE",
        "app_user": "INSERT, UPDATE",
        "staff_assignment": "INSERT, DELETE",
        "api_client": "INSERT, UPDATE",
    }
    for table, privileges in _CONTROL_WRITES:
        op.execute(f"REVOKE {privileges} ON rcm.{table} FROM rcm_control")
        op.execute(f"GRANT {previous[table]} ON rcm.{table} TO rcm_app")

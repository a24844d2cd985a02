"""Encounter intake: providers, patients, coverages, encounters, diagnoses, charge lines, work items,
idempotency records.

Revision ID: 0005_intake
Revises: 0004_identity
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from rcm.kit.rls import tenant_table_ddl

revision = "0005_intake"
down_revision = "0004_identity"
branch_labels = None
depends_on = None


def _base(name: str, *columns: sa.Column[object] | sa.Constraint) -> None:
    op.create_table(
        name,
        sa.Column("tenant_id", pg.UUID(), sa.ForeignKey("rcm.tenant.id"), primary_key=True),
        sa.Column("id", pg.UUID(), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        *columns,
    )


def _fk(columns: list[str], table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["tenant_id", *columns], [f"rcm.{table}.tenant_id", f"rcm.{table}.id"])


def upgrade() -> None:
    _base(
        "provider",
        sa.Column("npi", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("taxonomy", sa.Text()),
        sa.UniqueConstraint("tenant_id", "npi"),
        sa.CheckConstraint("kind IN ('individual', 'organization')", name="kind"),
    )
    _base(
        "patient",
        sa.Column("mrn", sa.LargeBinary(), nullable=False),
        sa.Column("given_name", sa.LargeBinary(), nullable=False),
        sa.Column("family_name", sa.LargeBinary(), nullable=False),
        sa.Column("birth_date", sa.LargeBinary(), nullable=False),
        sa.Column("address", sa.LargeBinary()),
        sa.Column("phone", sa.LargeBinary()),
        sa.Column("sex", sa.Text(), nullable=False),
        sa.Column("mrn_bidx", sa.LargeBinary(), nullable=False),
        sa.Column("name_dob_bidx", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        # One patient per MRN in a practice: intake matches on it instead of creating a duplicate.
        sa.UniqueConstraint("tenant_id", "mrn_bidx"),
        sa.CheckConstraint("sex IN ('female', 'male', 'other', 'unknown')", name="sex"),
    )
    op.create_index("ix_patient_name_dob", "patient", ["tenant_id", "name_dob_bidx"], schema="rcm")
    _base(
        "coverage",
        sa.Column("patient_id", pg.UUID(), nullable=False),
        sa.Column("payer_id", sa.Text(), nullable=False),
        sa.Column("member_id", sa.LargeBinary(), nullable=False),
        sa.Column("group_number", sa.LargeBinary()),
        sa.Column("member_id_bidx", sa.LargeBinary(), nullable=False),
        sa.Column("relationship", sa.Text(), nullable=False),
        sa.Column("priority", sa.Text(), nullable=False),
        sa.Column("start_date", sa.Date()),
        sa.Column("end_date", sa.Date()),
        _fk(["patient_id"], "patient"),
        sa.CheckConstraint("relationship IN ('self', 'spouse', 'child', 'other')", name="relationship"),
        sa.CheckConstraint("priority IN ('primary', 'secondary', 'tertiary')", name="priority"),
    )
    op.create_index("ix_coverage_member", "coverage", ["tenant_id", "member_id_bidx"], schema="rcm")
    op.create_index("ix_coverage_patient", "coverage", ["tenant_id", "patient_id"], schema="rcm")
    _base(
        "encounter",
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("patient_id", pg.UUID(), nullable=False),
        sa.Column("coverage_id", pg.UUID()),
        sa.Column("rendering_provider_id", pg.UUID(), nullable=False),
        sa.Column("billing_provider_id", pg.UUID(), nullable=False),
        sa.Column("service_date", sa.Date(), nullable=False),
        sa.Column("place_of_service", sa.Text(), nullable=False),
        sa.Column("documentation", sa.LargeBinary()),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("total_charge_cents", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        _fk(["patient_id"], "patient"),
        _fk(["coverage_id"], "coverage"),
        _fk(["rendering_provider_id"], "provider"),
        _fk(["billing_provider_id"], "provider"),
        sa.UniqueConstraint("tenant_id", "external_id"),
        sa.CheckConstraint("total_charge_cents >= 0", name="total_charge"),
    )
    op.create_index("ix_encounter_list", "encounter", ["tenant_id", "created_at", "id"], schema="rcm")
    op.create_index("ix_encounter_patient", "encounter", ["tenant_id", "patient_id"], schema="rcm")
    _base(
        "diagnosis",
        sa.Column("encounter_id", pg.UUID(), nullable=False),
        sa.Column("sequence", sa.SmallInteger(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        _fk(["encounter_id"], "encounter"),
        sa.UniqueConstraint("tenant_id", "encounter_id", "sequence"),
        sa.CheckConstraint("sequence BETWEEN 1 AND 12", name="sequence"),
    )
    _base(
        "charge_line",
        sa.Column("encounter_id", pg.UUID(), nullable=False),
        sa.Column("line_number", sa.SmallInteger(), nullable=False),
        sa.Column("procedure_code", sa.Text(), nullable=False),
        sa.Column("modifiers", pg.ARRAY(sa.Text()), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("charge_cents", sa.BigInteger(), nullable=False),
        sa.Column("diagnosis_pointers", pg.ARRAY(sa.SmallInteger()), nullable=False),
        sa.Column("service_date", sa.Date()),
        _fk(["encounter_id"], "encounter"),
        sa.UniqueConstraint("tenant_id", "encounter_id", "line_number"),
        sa.CheckConstraint("units > 0", name="units"),
        sa.CheckConstraint("charge_cents >= 0", name="charge"),
    )
    _base(
        "encounter_event",
        sa.Column("encounter_id", pg.UUID(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("note", sa.Text()),
        _fk(["encounter_id"], "encounter"),
    )
    op.create_index(
        "ix_encounter_event", "encounter_event", ["tenant_id", "encounter_id", "created_at"], schema="rcm"
    )
    _base(
        "work_item",
        sa.Column("queue", sa.Text(), nullable=False),
        sa.Column("encounter_id", pg.UUID(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        _fk(["encounter_id"], "encounter"),
    )
    op.create_index(
        "ix_work_item_queue",
        "work_item",
        ["tenant_id", "queue", "status", "priority", "due_at"],
        schema="rcm",
    )
    _base(
        "idempotency_record",
        sa.Column("principal", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("route", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.LargeBinary(), nullable=False),
        # What the first response touched, so a replay is audited like the read it is.
        sa.Column("resource_type", sa.Text(), nullable=False, server_default=""),
        sa.Column("resource_ids", pg.ARRAY(pg.UUID()), nullable=False, server_default="{}"),
        sa.Column("patient_ids", pg.ARRAY(pg.UUID()), nullable=False, server_default="{}"),
        sa.UniqueConstraint("tenant_id", "principal", "key"),
    )

    grants = {
        "provider": "SELECT, INSERT, UPDATE",
        "patient": "SELECT, INSERT, UPDATE",
        "coverage": "SELECT, INSERT, UPDATE",
        "encounter": "SELECT, INSERT, UPDATE",
        "diagnosis": "SELECT, INSERT, UPDATE, DELETE",
        "charge_line": "SELECT, INSERT, UPDATE, DELETE",
        # History rows are written once and never changed.
        "encounter_event": "SELECT, INSERT",
        "work_item": "SELECT, INSERT, UPDATE",
        "idempotency_record": "SELECT, INSERT, UPDATE, DELETE",
    }
    for table, privileges in grants.items():
        for statement in tenant_table_ddl(table, privileges=privileges):
            op.execute(statement)


def downgrade() -> None:
    for table in (
        "idempotency_record",
        "work_item",
        "encounter_event",
        "charge_line",
        "diagnosis",
        "encounter",
        "coverage",
        "patient",
        "provider",
    ):
        op.drop_table(table, schema="rcm")

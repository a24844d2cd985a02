"""FHIR R4 intake: the link from a practice's FHIR resource identifiers to our records.

``fhir_resource_link`` (tenant-owned, RLS forced) maps (resource type, identifier system and value) to the
record it became, so a resent bundle (even under another Idempotency-Key) creates nothing twice and answers
with the existing ids, and a later bundle may refer to a resource sent earlier (``Patient/123``,
``Patient?identifier=...``). Identifiers are PHI (MRNs, member ids, SSNs): only their keyed blind index
(HMAC-SHA256 under the practice's key) is stored, never the value.

The DDL is frozen here (role names and the policy are literals), as every revision's is.

Revision ID: 0017_fhir_intake
Revises: 0013_least_privilege
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0017_fhir_intake"
down_revision = "0016_coding_queue"
branch_labels = None
depends_on = None

_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE rcm.fhir_resource_link (
          tenant_id uuid NOT NULL,
          id uuid NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          resource_type text NOT NULL,
          identifier_bidx bytea NOT NULL,
          target_type text NOT NULL,
          target_id uuid NOT NULL,
          CONSTRAINT pk_fhir_resource_link PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_fhir_resource_link_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
          CONSTRAINT uq_fhir_resource_link_tenant_id_resource_type_identifier_bidx
            UNIQUE (tenant_id, resource_type, identifier_bidx),
          CONSTRAINT ck_fhir_resource_link_resource_type CHECK (
            resource_type IN ('Patient', 'Coverage', 'Practitioner', 'Organization', 'Encounter')
          ),
          CONSTRAINT ck_fhir_resource_link_target_type
            CHECK (target_type IN ('patient', 'coverage', 'provider', 'encounter'))
        )
        """
    )
    op.execute("ALTER TABLE rcm.fhir_resource_link ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE rcm.fhir_resource_link FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON rcm.fhir_resource_link USING ({_POLICY}) WITH CHECK ({_POLICY})"
    )
    # Links are written once; a record's identity never moves to another record.
    op.execute("GRANT SELECT, INSERT ON rcm.fhir_resource_link TO rcm_app")


def downgrade() -> None:
    op.execute("DROP TABLE rcm.fhir_resource_link")

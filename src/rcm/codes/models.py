"""Code sets: global reference tables (no tenant), versioned by effective date.

Every file loaded is a ``CodeSetRelease``; every code is one ``CodeVersion`` row per validity window
(``effective_through`` NULL while the newest release still carries it). The app role only reads these tables;
the operator loads them (``rcm codes load``, as the owner role). See migration 0014.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    Text,
    UniqueConstraint,
    func,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from rcm.kit.models import Base, EnumText


class CodeSystem(enum.StrEnum):
    """Systems looked up by code (``GET /api/v1/codes/{system}/{code}``)."""

    ICD10CM = "icd10cm"
    CPT = "cpt"
    HCPCS = "hcpcs"
    MODIFIER = "modifier"
    POS = "pos"
    CARC = "carc"
    RARC = "rarc"


class CodeSet(enum.StrEnum):
    """What a release loads: a code system, or one of the edit tables."""

    ICD10CM = "icd10cm"
    CPT = "cpt"
    HCPCS = "hcpcs"
    MODIFIER = "modifier"
    POS = "pos"
    CARC = "carc"
    RARC = "rarc"
    NCCI_PTP = "ncci_ptp"
    MUE = "mue"
    SEX_AGE = "sex_age"


class Sex(enum.StrEnum):
    FEMALE = "female"
    MALE = "male"


def _in(values: type[enum.StrEnum]) -> str:
    return ", ".join(f"'{member.value}'" for member in values)


class CodeSetRelease(Base):
    __tablename__ = "code_set_release"
    __table_args__ = (
        UniqueConstraint("code_set", "checksum"),  # the same file twice is one release
        CheckConstraint(f"code_set IN ({_in(CodeSet)})", name="code_set"),
        Index("ix_code_set_release_code_set_effective_from", "code_set", "effective_from"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    code_set: Mapped[CodeSet] = mapped_column(EnumText(CodeSet))
    label: Mapped[str] = mapped_column(Text)
    effective_from: Mapped[date] = mapped_column(Date)
    effective_through: Mapped[date | None] = mapped_column(Date, nullable=True)
    source: Mapped[str] = mapped_column(Text)
    checksum: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[datetime] = mapped_column(server_default=func.now())
    added: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    changed: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    terminated: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    unchanged: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class CodeVersion(Base):
    __tablename__ = "code_version"
    __table_args__ = (
        CheckConstraint(f"system IN ({_in(CodeSystem)})", name="system"),
        Index(
            "ix_code_version_search",
            text("to_tsvector('english'::regconfig, COALESCE(description, ''::text))"),
            postgresql_using="gin",
        ),
        Index("ix_code_version_release_id", "release_id"),
        # Search by code prefix (``LIKE 'E11%'``) under any collation.
        Index("ix_code_version_code_prefix", "system", "code", postgresql_ops={"code": "text_pattern_ops"}),
    )

    system: Mapped[CodeSystem] = mapped_column(EnumText(CodeSystem), primary_key=True)
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    effective_from: Mapped[date] = mapped_column(Date, primary_key=True)
    effective_through: Mapped[date | None] = mapped_column(Date, nullable=True)
    # False for an ICD-10-CM header (category or subcategory with children): not valid on a claim.
    billable: Mapped[bool] = mapped_column(server_default=true())
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    release_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("code_set_release.id"))


class NcciPtpEdit(Base):
    """An NCCI procedure-to-procedure edit: column 2 is not paid with column 1 on the same day, unless the
    modifier indicator is 1 and a modifier says the services were distinct."""

    __tablename__ = "ncci_ptp_edit"
    __table_args__ = (
        CheckConstraint("modifier_indicator IN (0, 1, 9)", name="modifier_indicator"),
        Index("ix_ncci_ptp_edit_column2", "column2"),
    )

    column1: Mapped[str] = mapped_column(Text, primary_key=True)
    column2: Mapped[str] = mapped_column(Text, primary_key=True)
    effective_from: Mapped[date] = mapped_column(Date, primary_key=True)
    # The edit applies to dates of service before this day (a row with deletion = effective never applied).
    deleted_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    modifier_indicator: Mapped[int] = mapped_column(SmallInteger)
    existed_before_1996: Mapped[bool] = mapped_column(server_default=text("false"))
    rationale: Mapped[str | None] = mapped_column(Text, nullable=True)
    release_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("code_set_release.id"))


class MueLimit(Base):
    __tablename__ = "mue_limit"
    __table_args__ = (
        CheckConstraint("adjudication_indicator IN (1, 2, 3)", name="adjudication_indicator"),
        CheckConstraint("units >= 0", name="units"),
    )

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    effective_from: Mapped[date] = mapped_column(Date, primary_key=True)
    effective_through: Mapped[date | None] = mapped_column(Date, nullable=True)
    units: Mapped[int] = mapped_column(Integer)
    # 1 line edit, 2 date-of-service edit (policy), 3 date-of-service edit (clinical).
    adjudication_indicator: Mapped[int] = mapped_column(SmallInteger)
    rationale: Mapped[str | None] = mapped_column(Text, nullable=True)
    release_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("code_set_release.id"))


class SexAgeEdit(Base):
    __tablename__ = "sex_age_edit"
    __table_args__ = (
        CheckConstraint(f"system IN ({_in(CodeSystem)})", name="system"),
        CheckConstraint(f"sex IN ({_in(Sex)})", name="sex"),
    )

    system: Mapped[CodeSystem] = mapped_column(EnumText(CodeSystem), primary_key=True)
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    effective_from: Mapped[date] = mapped_column(Date, primary_key=True)
    effective_through: Mapped[date | None] = mapped_column(Date, nullable=True)
    sex: Mapped[Sex | None] = mapped_column(EnumText(Sex), nullable=True)
    min_age_years: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_age_years: Mapped[int | None] = mapped_column(Integer, nullable=True)
    release_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("code_set_release.id"))

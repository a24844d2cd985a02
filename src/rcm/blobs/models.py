from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from rcm.kit.models import Base, EnumText, TenantOwned


class BlobBackend(enum.StrEnum):
    POSTGRES = "postgres"  # chunks in rcm.blob_chunk
    DIRECTORY = "directory"  # chunks in a file under RCM_BLOB_DIR, named by opaque ids


class BlobState(enum.StrEnum):
    WRITING = "writing"
    COMPLETE = "complete"


class Blob(TenantOwned, Base):
    """One encrypted file: how to open it (key version, salt, chunking) and what it holds (size, SHA-256)."""

    __tablename__ = "blob"
    __table_args__ = (
        CheckConstraint("backend IN ('postgres', 'directory')", name="backend"),
        CheckConstraint("state IN ('writing', 'complete')", name="state"),
        Index("ix_blob_key_version", "tenant_id", "key_version"),
        Index(
            "ix_blob_superseded",
            "tenant_id",
            "superseded_since",
            postgresql_where=text("superseded_since IS NOT NULL"),
        ),
    )

    content_type: Mapped[str] = mapped_column(Text)
    backend: Mapped[BlobBackend] = mapped_column(EnumText(BlobBackend))
    state: Mapped[BlobState] = mapped_column(EnumText(BlobState))
    key_version: Mapped[int] = mapped_column(Integer)
    salt: Mapped[bytes] = mapped_column(LargeBinary)
    chunk_size: Mapped[int] = mapped_column(Integer)
    chunk_count: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)  # plaintext bytes
    sha256: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # of the plaintext
    # Which chunks (postgres) or file (directory) hold the blob now: a re-seal under a newer key writes the
    # next generation beside this one and flips key_version, salt and generation in one UPDATE.
    generation: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Set by that flip when older chunks stay behind in blob_chunk for readers already under way; the sweep
    # deletes them after its grace period and clears this.
    superseded_since: Mapped[datetime | None] = mapped_column(nullable=True)


class BlobChunk(Base):
    """One ciphertext chunk of a blob kept in PostgreSQL."""

    __tablename__ = "blob_chunk"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "blob_id"], ["rcm.blob.tenant_id", "rcm.blob.id"], ondelete="CASCADE"
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id"), primary_key=True)
    blob_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, primary_key=True, server_default=text("0"))
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)

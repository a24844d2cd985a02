from __future__ import annotations

import uuid
from typing import ClassVar

from sqlalchemy import LargeBinary, Text, UniqueConstraint, Uuid
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from rcm.kit.models import Base, TenantOwned


class IdempotencyRecord(TenantOwned, Base):
    """The first response to a (caller, Idempotency-Key) pair, kept so a retry can be answered with it.

    The stored body may contain PHI (it is what the API returned), so it is encrypted like any PHI column.
    """

    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("tenant_id", "principal", "key"),)
    __phi_columns__: ClassVar[tuple[str, ...]] = ("response_body",)

    principal: Mapped[str] = mapped_column(Text)  # "client:<client_id>" or "user:<uuid>"
    key: Mapped[str] = mapped_column(Text)
    route: Mapped[str] = mapped_column(Text)  # method and path template
    request_hash: Mapped[bytes] = mapped_column(LargeBinary)
    status_code: Mapped[int]
    response_body: Mapped[bytes] = mapped_column(LargeBinary)
    resource_type: Mapped[str] = mapped_column(Text, default="", server_default="")
    resource_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), default=list, server_default="{}")
    patient_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), default=list, server_default="{}")

"""Provider DTOs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from rcm.patients.schemas import NO_NUL

Npi = Annotated[str, Meta(pattern=r"^[0-9]{10}$")]


class ProviderCreate(msgspec.Struct, forbid_unknown_fields=True):
    # NPIs that fail the Luhn check digit are accepted here and flagged at scrub: practices send them.
    npi: Npi
    name: Annotated[str, Meta(min_length=1, max_length=120, pattern=NO_NUL)]
    kind: Literal["individual", "organization"] = "individual"
    taxonomy: Annotated[str, Meta(pattern=r"^[0-9A-Z]{9}X$")] | None = None


class Provider(msgspec.Struct):
    id: uuid.UUID
    npi: str
    name: str
    kind: Literal["individual", "organization"]
    created_at: datetime
    taxonomy: str | None = None
    npi_check_digit_valid: bool = True

"""The payer directory file: a typed model (strict, unknown keys refused by name) and the shipped copy.

An operator's own directory has the same shape (``rcm payers load FILE``);
``rcm/payers/fixtures/directory.yaml`` is the one that ships (the demo payers)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rcm.kit.errors import FieldError, InvalidInput
from rcm.payers.connector import Endpoint, PermanentConnectorError
from rcm.payers.models import FilingIndicator

PAYER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,79}$"
PayerId = Annotated[str, Field(pattern=PAYER_ID_PATTERN)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Service(_Part):
    """Which connector serves one service (claims, eligibility, status) for the payer, and where: an
    endpoint reference the connectors read (``sftp://``, ``https://``, ``sandbox:``; never a secret)."""

    connector: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
    endpoint: Annotated[str | None, Field(min_length=1, max_length=500)] = None

    @model_validator(mode="after")
    def _endpoint_parses(self) -> Service:
        if self.endpoint is not None:
            try:
                Endpoint.parse(self.endpoint, connector=self.connector)
            except PermanentConnectorError as exc:
                raise ValueError(str(exc)) from None
        return self


class DirectoryPayer(_Part):
    id: PayerId
    name: Annotated[str, Field(min_length=1, max_length=200)]
    claim_filing_indicator: FilingIndicator
    claims: Service | None = None
    eligibility: Service | None = None
    status: Service | None = None
    status_inquiry_days: Annotated[int, Field(ge=1, le=365, strict=True)] = 30
    timely_filing_days: Annotated[int | None, Field(ge=1, le=3650, strict=True)] = None
    # Days after the remittance date within which the payer takes a first-level appeal.
    appeal_days: Annotated[int | None, Field(ge=1, le=3650, strict=True)] = None


class Directory(_Part):
    payers: tuple[DirectoryPayer, ...]

    @field_validator("payers")
    @classmethod
    def _ids_unique(cls, payers: tuple[DirectoryPayer, ...]) -> tuple[DirectoryPayer, ...]:
        seen: set[str] = set()
        for payer in payers:
            if payer.id in seen:
                raise ValueError(f"payer id {payer.id} is listed twice")
            seen.add(payer.id)
        return payers


def shipped_directory() -> Path:
    return Path(str(resources.files("rcm.payers").joinpath("fixtures", "directory.yaml")))


def read_directory(path: Path) -> Directory:
    """The directory in ``path``; every bad field is named by its JSON pointer."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput(f"{path.name} is not a readable YAML file: {type(exc).__name__}") from None
    try:
        return Directory.model_validate(document)
    except ValidationError as exc:
        errors = [
            FieldError("".join(f"/{p}" for p in e["loc"]), e["msg"]) for e in exc.errors(include_url=False)
        ]
        raise InvalidInput("The payer directory does not match its schema.", errors=errors) from None

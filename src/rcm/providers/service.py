"""Providers: matched by NPI (their identity); an NPI failing its check digit is accepted and flagged."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from rcm.audit.events import Action
from rcm.kit.errors import Conflict, FieldError
from rcm.kit.pagination import Page, decode_cursor, paginate
from rcm.providers import schemas
from rcm.providers.models import Provider
from rcm.providers.npi import npi_check_digit_valid
from rcm.providers.repository import ProviderRepository
from rcm.tenancy.scope import TenantScope

PROVIDER = "provider"


def provider_view(row: Provider) -> schemas.Provider:
    return schemas.Provider(
        id=row.id,
        npi=row.npi,
        name=row.name,
        kind=row.kind,  # type: ignore[arg-type]
        created_at=row.created_at,
        taxonomy=row.taxonomy,
        npi_check_digit_valid=row.npi_valid,
    )


@dataclass(frozen=True, slots=True)
class ProviderMatch:
    row: Provider
    created: bool
    # The NPI sent fails its check digit (``row`` may be the same-named provider found in its place).
    npi_failed: bool


def build_provider(data: schemas.ProviderCreate, *, valid: bool) -> Provider:
    return Provider.build(
        id=uuid.uuid4(), npi=data.npi, name=data.name, kind=data.kind, taxonomy=data.taxonomy, npi_valid=valid
    )


async def find_or_add_provider(scope: TenantScope, data: schemas.ProviderCreate) -> ProviderMatch:
    """Match by NPI, the provider's identity; create only when the practice has no provider with it.

    An NPI that fails its check digit is accepted (practices and EHRs send them; the scrub flags them) but
    never becomes a second provider of a name the practice already has: it is a typo of that provider's NPI.
    """
    repo = scope.repo(ProviderRepository)
    existing = await repo.by_npi(data.npi)
    if existing is not None:
        return ProviderMatch(existing, created=False, npi_failed=not existing.npi_valid)
    valid = npi_check_digit_valid(data.npi)
    if not valid:
        same_name = await repo.by_name(data.name, data.kind)
        if same_name is not None:
            return ProviderMatch(same_name, created=False, npi_failed=True)
    row = build_provider(data, valid=valid)
    await repo.insert(row)
    return ProviderMatch(row, created=True, npi_failed=not valid)


async def create_provider(scope: TenantScope, data: schemas.ProviderCreate) -> schemas.Provider:
    match = await find_or_add_provider(scope, data)
    if match.row.npi != data.npi:
        raise Conflict(
            "This NPI fails its check digit and a provider with this name already exists under another NPI.",
            errors=[FieldError("/npi", "fails its check digit; a provider with this name already exists")],
        )
    if not match.created:
        raise Conflict(
            "A provider with this NPI already exists.", errors=[FieldError("/npi", "already exists")]
        )
    row = match.row
    scope.audit("provider.create", Action.CREATE, resource_type=PROVIDER, resource_ids=[row.id])
    return provider_view(row)


async def get_provider(scope: TenantScope, provider_id: uuid.UUID) -> schemas.Provider:
    return provider_view(await scope.repo(ProviderRepository).get_or_404(provider_id))


async def list_providers(scope: TenantScope, *, limit: int, cursor: str | None) -> Page[schemas.Provider]:
    rows = await scope.repo(ProviderRepository).page(
        limit=limit + 1, after=decode_cursor(cursor) if cursor else None
    )
    return paginate(rows, limit, provider_view)

"""Scrub routes, under a practice's encounter: billing-company staff (coders, billers, supervisors)."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery

from rcm.idempotency.service import IdemKey, created_responses, run_idempotent
from rcm.identity.guards import requires_roles, requires_scopes
from rcm.identity.principal import Role
from rcm.identity.scopes import Scope
from rcm.kit.errors import problem_responses
from rcm.kit.secrets import SecretResolver
from rcm.patients.controllers import date_skew
from rcm.patients.service import latest_plausible_date
from rcm.scrub import schemas, service
from rcm.tenancy.dependencies import provide_tenant_scope
from rcm.tenancy.scope import TenantScope

STAFF = (Role.CODER, Role.BILLER, Role.SUPERVISOR)


class ScrubController(Controller):
    path = "/api/v1/tenants/{tenant_slug:str}/encounters/{encounter_id:uuid}/scrub"
    tags = ["scrub"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}
    guards = [requires_roles(*STAFF), requires_scopes(Scope.ENCOUNTERS_READ)]

    @post(
        "/",
        responses={
            200: ResponseSpec(data_container=schemas.ScrubReport, description="Dry run: nothing was written"),
            **created_responses(schemas.ScrubReport),
        },
        summary="Scrub an encounter (dry_run=true: report only, nothing written)",
        description=(
            "Runs every edit (built-in and the practice's manifest rules) and answers which ran, which fired "
            "and why, and which could not run for lack of reference data (never a pass). A stored scrub "
            "that fails, or could not check everything, opens (or keeps) one billing-queue item for the "
            "encounter; a clean one resolves it. The Idempotency-Key is required unless dry_run=true."
        ),
    )
    async def scrub(
        self,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        encounter_id: FromPath[uuid.UUID],
        dry_run: FromQuery[bool] = False,
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        settings = request.app.state.settings
        secrets = SecretResolver(settings.secrets_dir)
        latest = latest_plausible_date(date_skew(request))

        async def produce() -> tuple[int, schemas.ScrubReport]:
            report = await service.scrub_encounter(
                tenant, encounter_id, dry_run=dry_run, secrets=secrets, latest=latest
            )
            return (200 if dry_run else 201), report

        if dry_run:
            status, report = await produce()
            return Response(msgspec.json.encode(report), status_code=status, media_type="application/json")
        return await run_idempotent(
            tenant, request, key=idempotency_key, resource_type="scrub_run", produce=produce
        )

    @get(
        "/",
        responses=problem_responses(),
        summary="The encounter's latest stored scrub",
    )
    async def latest(
        self, tenant: NamedDependency[TenantScope], encounter_id: FromPath[uuid.UUID]
    ) -> schemas.ScrubReport:
        return await service.latest_scrub(tenant, encounter_id)

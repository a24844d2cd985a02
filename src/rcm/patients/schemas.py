"""Patient and coverage DTOs. Constraints live in the types so the OpenAPI schema states them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from rcm.kit.phi import MaskedRepr

# PostgreSQL text (and X12) cannot carry NUL: free text refuses it here, so the answer is a 422 naming the
# field instead of a driver error at insert time.
NO_NUL = r"^[^\x00]*$"
Name = Annotated[str, Meta(min_length=1, max_length=100, pattern=NO_NUL)]
Mrn = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[^\s\x00]([^\x00\n]*[^\s\x00])?$")]
MemberId = Annotated[str, Meta(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9-]+$")]
Phone = Annotated[str, Meta(pattern=r"^\+?[0-9 ().-]{7,20}$")]
UsState = Annotated[str, Meta(pattern=r"^[A-Z]{2}$")]
PostalCode = Annotated[str, Meta(pattern=r"^[0-9]{5}(-?[0-9]{4})?$")]
Sex = Literal["female", "male", "other", "unknown"]
Relationship = Literal["self", "spouse", "child", "other"]
Priority = Literal["primary", "secondary", "tertiary"]


class Address(MaskedRepr, msgspec.Struct, forbid_unknown_fields=True):
    line1: Annotated[str, Meta(min_length=1, max_length=100, pattern=NO_NUL)]
    city: Annotated[str, Meta(min_length=1, max_length=60, pattern=NO_NUL)]
    state: UsState
    postal_code: PostalCode
    line2: Annotated[str, Meta(max_length=100, pattern=NO_NUL)] | None = None


class PatientCreate(MaskedRepr, msgspec.Struct, forbid_unknown_fields=True):
    mrn: Mrn
    given_name: Name
    family_name: Name
    birth_date: date
    sex: Sex
    address: Address | None = None
    phone: Phone | None = None


class Patient(MaskedRepr, msgspec.Struct):
    id: uuid.UUID
    mrn: str
    given_name: str
    family_name: str
    birth_date: date
    sex: Sex
    created_at: datetime
    address: Address | None = None
    phone: str | None = None


class SubscriberCreate(MaskedRepr, msgspec.Struct, forbid_unknown_fields=True):
    """The insured when not the patient (837P 2010BA; the patient goes in 2000C with PAT01)."""

    family_name: Name
    given_name: Name
    birth_date: date
    middle_name: Name | None = None
    sex: Sex | None = None
    address: Address | None = None


class Subscriber(MaskedRepr, msgspec.Struct):
    family_name: str
    given_name: str
    birth_date: date
    middle_name: str | None = None
    sex: Sex | None = None
    address: Address | None = None


class CoverageCreate(MaskedRepr, msgspec.Struct, forbid_unknown_fields=True):
    payer_id: Annotated[str, Meta(min_length=1, max_length=40, pattern=NO_NUL)]
    member_id: MemberId
    relationship: Relationship = "self"
    priority: Priority = "primary"
    group_number: Annotated[str, Meta(min_length=1, max_length=50, pattern=NO_NUL)] | None = None
    start_date: date | None = None
    end_date: date | None = None
    # Required when ``relationship`` is not self, refused when it is.
    subscriber: SubscriberCreate | None = None


class Coverage(MaskedRepr, msgspec.Struct):
    id: uuid.UUID
    patient_id: uuid.UUID
    payer_id: str
    member_id: str
    relationship: Relationship
    priority: Priority
    created_at: datetime
    group_number: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    subscriber: Subscriber | None = None


class PatientSearch(MaskedRepr, msgspec.Struct, forbid_unknown_fields=True):
    """Exact-match search through blind indexes. PHI travels in the body, never in a URL (URLs end up in
    access logs and traces)."""

    mrn: Mrn | None = None
    family_name: Name | None = None
    birth_date: date | None = None

"""An encounter's parties beyond its patient and providers, as the 837P names them: the referring provider
(2310A NM1*DN), the service facility (2310C NM1*77) and the prior authorization (2300 REF*G1). Not PHI:
ordinary columns of the encounter, checked, written and read back here."""

from __future__ import annotations

from rcm.encounters import schemas
from rcm.encounters.models import Encounter
from rcm.kit.errors import FieldError
from rcm.patients.schemas import Address
from rcm.providers.npi import npi_check_digit_valid


def check_parties(
    referring: schemas.ReferringProvider | None, facility: schemas.ServiceFacility | None
) -> list[FieldError]:
    """The referring provider's and the service facility's NPIs must pass the check digit (NM109 under XX):
    unlike the rendering provider, no provider record carries a flag for the scrub, so a typo is refused."""
    errors = []
    for pointer, npi in (
        ("/referring_provider/npi", referring.npi if referring else None),
        ("/service_facility/npi", facility.npi if facility else None),
    ):
        if npi is not None and not npi_check_digit_valid(npi):
            errors.append(FieldError(pointer, "fails the NPI check digit"))
    return errors


def referring_columns(referring: schemas.ReferringProvider | None) -> dict[str, str | None]:
    return {
        "referring_npi": referring.npi if referring else None,
        "referring_family_name": referring.family_name if referring else None,
        "referring_given_name": referring.given_name if referring else None,
        "referring_taxonomy": referring.taxonomy if referring else None,
    }


def facility_columns(facility: schemas.ServiceFacility | None) -> dict[str, str | None]:
    address = facility.address if facility else None
    return {
        "facility_name": facility.name if facility else None,
        "facility_npi": facility.npi if facility else None,
        "facility_line1": address.line1 if address else None,
        "facility_line2": address.line2 if address else None,
        "facility_city": address.city if address else None,
        "facility_state": address.state if address else None,
        "facility_postal_code": address.postal_code if address else None,
    }


def party_columns(data: schemas.EncounterCreate) -> dict[str, str | None]:
    """The encounter's columns for its referring provider, service facility and prior authorization."""
    return {
        **referring_columns(data.referring_provider),
        **facility_columns(data.service_facility),
        "prior_authorization": data.prior_authorization,
    }


def referring_of(row: Encounter) -> schemas.ReferringProvider | None:
    if row.referring_npi is None or row.referring_family_name is None:
        return None
    return schemas.ReferringProvider(
        npi=row.referring_npi,
        family_name=row.referring_family_name,
        given_name=row.referring_given_name,
        taxonomy=row.referring_taxonomy,
    )


def facility_of(row: Encounter) -> schemas.ServiceFacility | None:
    if (
        row.facility_name is None
        or row.facility_line1 is None
        or row.facility_city is None
        or row.facility_state is None
        or row.facility_postal_code is None
    ):
        return None
    return schemas.ServiceFacility(
        name=row.facility_name,
        npi=row.facility_npi,
        address=Address(
            line1=row.facility_line1,
            line2=row.facility_line2,
            city=row.facility_city,
            state=row.facility_state,
            postal_code=row.facility_postal_code,
        ),
    )

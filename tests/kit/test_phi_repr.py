from __future__ import annotations

import datetime
import uuid

from rcm.encounters.schemas import EncounterCreate
from rcm.patients.schemas import Patient, PatientCreate


def test_phi_dtos_print_as_stars() -> None:
    created = PatientCreate(
        mrn="MRN-SECRET",
        given_name="Annabel",
        family_name="Leeward",
        birth_date=datetime.date(1990, 1, 2),
        sex="female",
    )
    patient = Patient(
        id=uuid.uuid4(),
        mrn="MRN-SECRET",
        given_name="Annabel",
        family_name="Leeward",
        birth_date=datetime.date(1990, 1, 2),
        sex="female",
        created_at=datetime.datetime.now(datetime.UTC),
    )
    encounter = EncounterCreate(
        external_id="E1",
        service_date=datetime.date(2026, 1, 1),
        place_of_service="11",
        patient=created,
        documentation="Leeward reports pain",
    )
    for obj in (created, patient, encounter):
        text = f"{obj!r} {obj!s} {[obj]}"
        for value in ("MRN-SECRET", "Annabel", "Leeward", "1990"):
            assert value not in text
    assert str(patient.id) in repr(patient)

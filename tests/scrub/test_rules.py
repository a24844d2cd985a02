"""Every built-in rule with a passing and a failing case (and "not checked" where it needs reference data).

The rules are pure functions of a ``ScrubContext``; here the context is built by hand, with the reference
answers a lookup would give (the lookups themselves are tested in test_reference.py).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from rcm.kit.secrets import SecretUnavailable
from rcm.scrub.inputs import CoverageIn, DiagnosisIn, LineIn, ProviderIn, ScrubInput
from rcm.scrub.reference import CodeStatus, MueLimit, NotLoaded, PtpEdit, SexAgeEdit
from rcm.scrub.rules import REGISTRY, RuleStatus, ScrubContext, Severity, Verdict
from rcm.tenancy.manifest import validate_manifest

TODAY = date(2026, 12, 1)
DOS = date(2026, 11, 20)


def line(number: int, code: str, **kw: Any) -> LineIn:
    values: dict[str, Any] = {
        "line_number": number,
        "procedure_code": code,
        "modifiers": (),
        "units": 1,
        "charge_cents": 10000,
        "diagnosis_pointers": (1,),
        "service_date": DOS,
    }
    values.update(kw)
    return LineIn(**values)


def encounter(**kw: Any) -> ScrubInput:
    values: dict[str, Any] = {
        "encounter_id": uuid.uuid4(),
        "patient_id": uuid.uuid4(),
        "status": "coded",
        "service_date": DOS,
        "place_of_service": "11",
        "patient_sex": "female",
        "providers": (ProviderIn("rendering", "1234567893"), ProviderIn("billing", "1003000126")),
        "coverage": CoverageIn("DEMO-MCR", True, "self", date(2026, 1, 1), None),
        "diagnoses": (DiagnosisIn(1, "E119"), DiagnosisIn(2, "I10")),
        "lines": (line(1, "99213", diagnosis_pointers=(1, 2)), line(2, "G2211")),
    }
    values.update(kw)
    return ScrubInput(**values)


MANIFEST = validate_manifest(
    {
        "slug": "rules-test",
        "name": "Rules test",
        "billing_provider": {"npi": "1003000126", "name": "Group"},
        "tin_reference": "env:RULES_TIN",
        "payers": [
            {"payer_id": "DEMO-MCR", "name": "Demo Medicare", "timely_filing_days": 365},
            {"payer_id": "DEMO-NOW", "name": "No window"},
        ],
    }
)


def ctx(data: ScrubInput | None = None, **kw: Any) -> ScrubContext:
    context = ScrubContext(
        data or encounter(), MANIFEST, TODAY, latest=TODAY + timedelta(days=1), tin=SecretStr("12-3456789")
    )
    for name, value in kw.items():
        setattr(context, name, value)
    return context


def run(rule_id: str, context: ScrubContext) -> Verdict:
    return REGISTRY[rule_id].check(context)


def assert_passes(rule_id: str, context: ScrubContext) -> None:
    verdict = run(rule_id, context)
    assert verdict.status is RuleStatus.PASSED, verdict
    assert not verdict.findings


def assert_fires(rule_id: str, context: ScrubContext, *fragments: str) -> Verdict:
    verdict = run(rule_id, context)
    assert verdict.status is RuleStatus.FIRED, verdict
    text = " ".join(f.message for f in verdict.findings)
    for fragment in fragments:
        assert fragment in text, text
    return verdict


def test_registry_ids_versions_severities() -> None:
    assert {r.spec.key for r in REGISTRY.values()} >= {"NCCI-PTP@2026.1", "MUE@2026.1", "SEX-AGE@2026.1"}
    assert REGISTRY["TIMELY-FILING-NEAR"].spec.severity is Severity.WARNING
    assert REGISTRY["NPI-CHECK"].spec.severity is Severity.ERROR


# Required data ---------------------------------------------------------------------------------------


def test_npi_check() -> None:
    assert_passes("NPI-CHECK", ctx())
    bad = encounter(providers=(ProviderIn("rendering", "1234567890"), ProviderIn("billing", "1003000126")))
    verdict = assert_fires("NPI-CHECK", ctx(bad), "rendering provider's NPI 1234567890 fails its check digit")
    assert len(verdict.findings) == 1


def test_tin_present() -> None:
    assert_passes("TIN-PRESENT", ctx())
    assert_fires("TIN-PRESENT", ctx(tin=SecretStr("12345")), "not nine digits")
    assert_fires("TIN-PRESENT", ctx(tin=SecretUnavailable("'env:RULES_TIN' is not set")), "is not set")
    no_reference = ctx()
    no_reference.manifest = MANIFEST.model_copy(update={"tin_reference": None})
    assert_fires("TIN-PRESENT", no_reference, "no TIN reference")


def test_tin_value_never_appears_in_a_message() -> None:
    verdict = run("TIN-PRESENT", ctx(tin=SecretStr("98765")))
    assert all("98765" not in f.message for f in verdict.findings)
    assert all("98765" not in item for item in verdict.looked_at)


def test_subscriber() -> None:
    assert_passes("SUBSCRIBER", ctx())
    assert_fires("SUBSCRIBER", ctx(encounter(coverage=None)), "no coverage")
    assert_fires(
        "SUBSCRIBER", ctx(encounter(coverage=CoverageIn("OTHER", True, "self", None, None))), "not one of"
    )
    assert_fires(
        "SUBSCRIBER", ctx(encounter(coverage=CoverageIn("DEMO-MCR", False, "self", None, None))), "member id"
    )
    ended = CoverageIn("DEMO-MCR", True, "self", None, date(2026, 10, 31))
    assert_fires("SUBSCRIBER", ctx(encounter(coverage=ended)), "ended on 2026-10-31")


def test_dates() -> None:
    assert_passes("DATES", ctx())
    future = TODAY + timedelta(days=5)
    assert_fires(
        "DATES", ctx(encounter(service_date=future, lines=(line(1, "99213", service_date=future),))), "future"
    )
    assert_fires("DATES", ctx(encounter(lines=())), "no charge lines")


def test_place_of_service() -> None:
    # Without a place-of-service release loaded: the built-in CMS list, and the result says so.
    verdict = run("POS-VALID", ctx())
    assert verdict.status is RuleStatus.PASSED
    assert "built-in CMS list" in " ".join(verdict.looked_at)
    assert_fires("POS-VALID", ctx(encounter(place_of_service="30")), "place of service 30")


def test_place_of_service_from_the_loaded_code_set() -> None:
    """A loaded release decides, on the date of service: a code retired (or not yet added) is refused."""
    retired = [CodeStatus("pos", "11", False, "not valid on 2026-11-20: terminated 2026-01-01")]
    verdict = assert_fires(
        "POS-VALID", ctx(codes={DOS: retired}), "place of service 11 is not valid on 2026-11-20"
    )
    assert "terminated 2026-01-01" in verdict.findings[0].message
    assert "code set" in " ".join(verdict.looked_at)
    # "30" is not in the built-in list; a release that has it (a new code) lets it through.
    added = [CodeStatus("pos", "30", True)]
    assert_passes("POS-VALID", ctx(encounter(place_of_service="30"), codes={DOS: added}))
    # The place of service is not reported again by CODES-VALID.
    assert_passes("CODES-VALID", ctx(codes={DOS: [CodeStatus("icd10cm", "E119", True), *retired]}))


def test_codes_current_warns_when_the_date_is_past_the_newest_release() -> None:
    current = [CodeStatus("icd10cm", "E119", True), CodeStatus("cpt", "99213", True)]
    assert_passes("CODES-CURRENT", ctx(codes={DOS: current}))
    warning = "code set may be out of date: newest ICD-10-CM release loaded is 2026 (through 2026-09-30)"
    stale = [
        CodeStatus("icd10cm", "E119", True, None, warning),
        CodeStatus("icd10cm", "I10", True, None, warning),
    ]
    verdict = assert_fires(
        "CODES-CURRENT", ctx(codes={DOS: stale}), "Code set may be out of date", "2026-09-30"
    )
    assert len(verdict.findings) == 1  # one warning per release and date, not one per code
    assert REGISTRY["CODES-CURRENT"].spec.severity is Severity.WARNING
    assert run("CODES-CURRENT", ctx(codes={DOS: NotLoaded("no code sets")})).status is RuleStatus.NOT_CHECKED


# Codes -----------------------------------------------------------------------------------------------


def test_codes_valid() -> None:
    good = [CodeStatus("icd10cm", "E119", True), CodeStatus("cpt", "99213", True)]
    assert_passes("CODES-VALID", ctx(codes={DOS: good}))
    bad = [*good, CodeStatus("cpt", "99999", False, "unknown code")]
    assert_fires(
        "CODES-VALID", ctx(codes={DOS: bad}), "cpt code 99999 is not valid on 2026-11-20 (unknown code)"
    )


def test_codes_not_loaded_is_not_a_pass() -> None:
    verdict = run("CODES-VALID", ctx(codes={DOS: NotLoaded("no code sets")}))
    assert verdict.status is RuleStatus.NOT_CHECKED
    assert verdict.reason
    assert "no code sets" in verdict.reason
    partly = [CodeStatus("icd10cm", "E119", True), CodeStatus("cpt", "99213", None, "no CPT code set loaded")]
    verdict = run("CODES-VALID", ctx(codes={DOS: partly}))
    assert verdict.status is RuleStatus.NOT_CHECKED
    assert verdict.reason
    assert "cpt 99213 (no CPT code set loaded)" in verdict.reason


def test_diagnosis_pointers() -> None:
    assert_passes("DX-POINTERS", ctx())
    assert_fires(
        "DX-POINTERS", ctx(encounter(lines=(line(1, "99213", diagnosis_pointers=(3,)),))), "diagnosis 3"
    )
    assert_fires(
        "DX-POINTERS", ctx(encounter(lines=(line(1, "99213", diagnosis_pointers=()),))), "no diagnosis"
    )
    assert_fires("DX-POINTERS", ctx(encounter(diagnoses=(), lines=())), "no diagnosis")


def test_ncci_ptp() -> None:
    lines = (line(1, "99213"), line(2, "20610"))
    edit = PtpEdit("20610", "99213", 1)
    assert_passes("NCCI-PTP", ctx(encounter(lines=lines), ptp={DOS: []}))
    assert_fires("NCCI-PTP", ctx(encounter(lines=lines), ptp={DOS: [edit]}), "99213", "bundled into 20610")
    # Indicator 1 with an NCCI-associated modifier: distinct services, paid.
    with_25 = (line(1, "99213", modifiers=("25",)), line(2, "20610"))
    assert_passes("NCCI-PTP", ctx(encounter(lines=with_25), ptp={DOS: [edit]}))
    # Indicator 0: no modifier helps.
    assert_fires(
        "NCCI-PTP",
        ctx(encounter(lines=with_25), ptp={DOS: [replace(edit, modifier_indicator=0)]}),
        "no modifier",
    )
    # Indicator 9: the edit does not apply.
    assert_passes("NCCI-PTP", ctx(encounter(lines=lines), ptp={DOS: [replace(edit, modifier_indicator=9)]}))
    # Different dates of service: no conflict.
    apart = (line(1, "99213"), line(2, "20610", service_date=DOS + timedelta(days=1)))
    assert_passes("NCCI-PTP", ctx(encounter(lines=apart), ptp={DOS: [edit], DOS + timedelta(days=1): [edit]}))
    verdict = run("NCCI-PTP", ctx(encounter(lines=lines), ptp={DOS: NotLoaded("no NCCI release loaded")}))
    assert verdict.status is RuleStatus.NOT_CHECKED


@pytest.mark.parametrize("indicator", [1, 3])
def test_mue(indicator: int) -> None:
    limit = MueLimit("J1100", 2, indicator)
    ok = (line(1, "J1100", units=2),)
    assert_passes("MUE", ctx(encounter(lines=ok), mue={DOS: {"J1100": limit}}))
    too_many = (line(1, "J1100", units=3),)
    assert_fires("MUE", ctx(encounter(lines=too_many), mue={DOS: {"J1100": limit}}), "3 units", "allows 2")
    verdict = run("MUE", ctx(encounter(lines=ok), mue={DOS: NotLoaded("no MUE release loaded")}))
    assert verdict.status is RuleStatus.NOT_CHECKED


def test_mue_per_day_sums_lines() -> None:
    split = (line(1, "J1100", units=2), line(2, "J1100", units=1, modifiers=("76",)))
    assert_fires("MUE", ctx(encounter(lines=split), mue={DOS: {"J1100": MueLimit("J1100", 2, 2)}}), "per day")
    assert_passes("MUE", ctx(encounter(lines=split), mue={DOS: {"J1100": MueLimit("J1100", 2, 1)}}))


def test_sex_age() -> None:
    female_only = SexAgeEdit("icd10cm", "O80", "female", None, None)
    assert_passes("SEX-AGE", ctx(sex_age={DOS: [female_only]}))
    assert_fires(
        "SEX-AGE", ctx(encounter(patient_sex="male"), sex_age={DOS: [female_only]}), "female patients only"
    )
    pediatric = SexAgeEdit("cpt", "99381", None, 0, 1)
    child = encounter(birth_date=date(2026, 3, 1))
    assert_passes("SEX-AGE", ctx(child, sex_age={DOS: [pediatric]}))
    adult = encounter(birth_date=date(1980, 2, 29))
    verdict = assert_fires("SEX-AGE", ctx(adult, sex_age={DOS: [pediatric]}), "ages 0 to 1")
    assert all("1980" not in f.message for f in verdict.findings)  # never the birth date
    assert run("SEX-AGE", ctx(sex_age={DOS: NotLoaded("none")})).status is RuleStatus.NOT_CHECKED
    # An age edit without the birth date is not a pass either.
    assert run("SEX-AGE", ctx(sex_age={DOS: [pediatric]})).status is RuleStatus.NOT_CHECKED


def test_duplicate_lines() -> None:
    assert_passes("DUPLICATE-LINE", ctx())
    twice = (line(1, "99213"), line(2, "99213"))
    assert_fires("DUPLICATE-LINE", ctx(encounter(lines=twice)), "Line 2 (99213) repeats line 1")
    repeated = (line(1, "93000"), line(2, "93000", modifiers=("76",)))
    assert_passes("DUPLICATE-LINE", ctx(encounter(lines=repeated)))


def test_timely_filing() -> None:
    assert_passes("TIMELY-FILING", ctx())
    old = date(2025, 10, 1)
    late = encounter(service_date=old, lines=(line(1, "99213", service_date=old),))
    assert_fires("TIMELY-FILING", ctx(late), "closed on 2026-10-01")
    no_window = encounter(coverage=CoverageIn("DEMO-NOW", True, "self", None, None))
    verdict = run("TIMELY-FILING", ctx(no_window))
    assert verdict.status is RuleStatus.NOT_CHECKED
    assert verdict.reason
    assert "DEMO-NOW" in verdict.reason


def test_timely_filing_near() -> None:
    assert_passes("TIMELY-FILING-NEAR", ctx())
    near = date(2025, 12, 20)
    soon = encounter(service_date=near, lines=(line(1, "99213", service_date=near),))
    assert_fires("TIMELY-FILING-NEAR", ctx(soon), "closes on 2026-12-20")
    assert run("TIMELY-FILING-NEAR", ctx(encounter(coverage=None))).status is RuleStatus.NOT_CHECKED

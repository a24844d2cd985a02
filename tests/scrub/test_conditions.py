"""Manifest rules: the condition language evaluated, and refused by the schema (naming the path) when bad."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from rcm.kit.errors import InvalidInput
from rcm.scrub.conditions import manifest_rule
from rcm.scrub.inputs import CoverageIn, DiagnosisIn
from rcm.scrub.rules import RuleSource, RuleStatus
from rcm.scrub.service import rules_for
from rcm.tenancy.manifest import manifest_schema, validate_manifest
from rcm.tenancy.scrub_rules import ScrubRule
from tests.scrub.test_rules import MANIFEST, ctx, encounter, line

BASE = {"slug": "cond-test", "name": "Conditions", "billing_provider": {"npi": "1003000126", "name": "G"}}


def declared(**kw: Any) -> ScrubRule:
    values: dict[str, Any] = {
        "id": "P-RULE",
        "version": "1",
        "severity": "error",
        "message": "Practice rule.",
        "when": {"procedure_code_in": ["99213"]},
        "require": {"modifier_in": ["25"]},
    }
    values.update(kw)
    return ScrubRule.model_validate(values)


def verdict(rule: ScrubRule, **encounter_kw: Any) -> Any:
    return manifest_rule(rule).check(ctx(encounter(**encounter_kw)))


def test_modifier_required_on_matching_lines_only() -> None:
    rule = declared()
    fired = verdict(rule)
    assert fired.status is RuleStatus.FIRED
    assert [f.line_number for f in fired.findings] == [1]
    assert "needs modifier 25" in fired.findings[0].message
    assert verdict(rule, lines=(line(1, "99213", modifiers=("25",)),)).status is RuleStatus.PASSED
    assert verdict(rule, lines=(line(1, "99214"),)).status is RuleStatus.PASSED


def test_when_payer_place_modifier_and_other_procedure() -> None:
    rule = declared(
        when={
            "payer_in": ["DEMO-MCR"],
            "place_of_service_in": ["11"],
            "procedure_code_in": ["99213"],
            "with_procedure_in": ["G2211"],
        }
    )
    assert verdict(rule).status is RuleStatus.FIRED
    assert (
        verdict(rule, coverage=CoverageIn("DEMO-NOW", True, "self", None, None)).status is RuleStatus.PASSED
    )
    assert verdict(rule, place_of_service="22").status is RuleStatus.PASSED
    assert verdict(rule, lines=(line(1, "99213"),)).status is RuleStatus.PASSED  # no G2211 beside it
    by_modifier = declared(when={"modifier_in": ["LT"]}, require={"modifier_not_in": ["RT"]})
    both = (line(1, "20610", modifiers=("LT", "RT")),)
    assert verdict(by_modifier, lines=both).status is RuleStatus.FIRED
    assert verdict(by_modifier, lines=(line(1, "20610", modifiers=("LT",)),)).status is RuleStatus.PASSED


def test_units_and_diagnosis_requirements() -> None:
    units = declared(require={"units_at_most": 1})
    assert verdict(units, lines=(line(1, "99213", units=2),)).status is RuleStatus.FIRED
    assert verdict(units, lines=(line(1, "99213", units=1),)).status is RuleStatus.PASSED
    diabetes = declared(require={"diagnosis_prefix_in": ["E11"]})
    assert verdict(diabetes, lines=(line(1, "99213", diagnosis_pointers=(1,)),)).status is RuleStatus.PASSED
    assert verdict(diabetes, lines=(line(1, "99213", diagnosis_pointers=(2,)),)).status is RuleStatus.FIRED
    assert (
        verdict(diabetes, diagnoses=(DiagnosisIn(1, "I10"),), lines=(line(1, "99213"),)).status
        is RuleStatus.FIRED
    )


def test_manifest_rules_run_after_the_builtin_ones_with_their_key_and_severity() -> None:
    manifest = MANIFEST.model_copy(update={"scrub_rules": (declared(severity="warning"),)})
    rules = rules_for(manifest)
    last = rules[-1].spec
    assert last.key == "manifest:P-RULE@1"
    assert last.source is RuleSource.MANIFEST
    assert last.severity.value == "warning"
    assert rules[0].spec.source is RuleSource.BUILTIN


@pytest.mark.parametrize(
    ("rule", "pointer"),
    [
        ({"require": {"modifier_in": ["2"]}}, "/scrub_rules/0/require/modifier_in/0"),
        ({"when": {}}, "/scrub_rules/0/when"),
        ({"when": {"procedure_code_in": ["99213"], "code": "import os"}}, "/scrub_rules/0/when/code"),
        ({"severity": "fatal"}, "/scrub_rules/0/severity"),
        ({"require": {"units_at_most": "1"}}, "/scrub_rules/0/require/units_at_most"),
        ({"id": "lower-case"}, "/scrub_rules/0/id"),
        ({"message": ""}, "/scrub_rules/0/message"),
    ],
)
def test_bad_rules_are_refused_naming_the_path(rule: dict[str, Any], pointer: str) -> None:
    document = {
        **BASE,
        "scrub_rules": [
            {
                "id": "P-RULE",
                "version": "1",
                "severity": "error",
                "message": "m",
                "when": {"procedure_code_in": ["99213"]},
                "require": {"modifier_in": ["25"]},
                **rule,
            }
        ],
    }
    with pytest.raises(InvalidInput) as refused:
        validate_manifest(document)
    assert pointer in {e.pointer for e in refused.value.errors}
    # tenants/schema.json (what editors and CI validate with) refuses it too, at the same place.
    errors = list(Draft202012Validator(manifest_schema()).iter_errors(document))
    assert errors
    assert any("/" + "/".join(map(str, e.absolute_path)) in pointer for e in errors)


def test_rule_ids_are_unique() -> None:
    rule = {
        "id": "P-RULE",
        "version": "1",
        "severity": "error",
        "message": "m",
        "when": {"procedure_code_in": ["99213"]},
        "require": {"modifier_in": ["25"]},
    }
    with pytest.raises(InvalidInput) as refused:
        validate_manifest({**BASE, "scrub_rules": [rule, rule]})
    assert {e.pointer for e in refused.value.errors} == {"/scrub_rules"}

"""Practice and payer rules from the tenant manifest, evaluated over one encounter.

The language (``rcm.tenancy.scrub_rules``) is structured data: ``when`` selects charge lines (every
condition given must hold; a list means "any of"), ``require`` is what each selected line must satisfy. No
expression is parsed and no code is run: each key below is one fixed Python test.
"""

from __future__ import annotations

from rcm.scrub.inputs import LineIn, ScrubInput
from rcm.scrub.rules import Finding, Rule, RuleSource, RuleSpec, ScrubContext, Verdict, judged
from rcm.tenancy.scrub_rules import RuleRequire, RuleWhen, ScrubRule


def _selects(when: RuleWhen, data: ScrubInput, line: LineIn) -> bool:
    payer = data.coverage.payer_id if data.coverage is not None else None
    others = {other.procedure_code for other in data.lines if other is not line}
    return all(
        (
            when.payer_in is None or payer in when.payer_in,
            when.place_of_service_in is None or data.place_of_service in when.place_of_service_in,
            when.procedure_code_in is None or line.procedure_code in when.procedure_code_in,
            when.modifier_in is None or bool(set(when.modifier_in) & set(line.modifiers)),
            when.with_procedure_in is None or bool(set(when.with_procedure_in) & others),
        )
    )


def _unmet(require: RuleRequire, data: ScrubInput, line: LineIn) -> list[str]:
    """What ``line`` lacks, in words (empty: every requirement holds)."""
    unmet = []
    if require.modifier_in is not None and not set(require.modifier_in) & set(line.modifiers):
        unmet.append(f"needs modifier {' or '.join(require.modifier_in)}")
    if require.modifier_not_in is not None and set(require.modifier_not_in) & set(line.modifiers):
        unmet.append(
            f"must not carry {' or '.join(sorted(set(require.modifier_not_in) & set(line.modifiers)))}"
        )
    if require.units_at_most is not None and line.units > require.units_at_most:
        unmet.append(f"bills {line.units} units, at most {require.units_at_most} allowed")
    if require.diagnosis_prefix_in is not None:
        codes = {d.sequence: d.code for d in data.diagnoses}
        pointed = [codes[p] for p in line.diagnosis_pointers if p in codes]
        if not any(code.startswith(require.diagnosis_prefix_in) for code in pointed):
            unmet.append(f"needs a diagnosis starting {' or '.join(require.diagnosis_prefix_in)}")
    return unmet


def manifest_rule(declared: ScrubRule) -> Rule:
    """A manifest rule as a registry rule (its key is ``manifest:ID@VERSION``)."""

    def check(ctx: ScrubContext) -> Verdict:
        findings = []
        selected = [line for line in ctx.input.lines if _selects(declared.when, ctx.input, line)]
        for line in selected:
            unmet = _unmet(declared.require, ctx.input, line)
            if unmet:
                findings.append(
                    Finding(f"{declared.message} ({line.name}: {'; '.join(unmet)})", line.line_number)
                )
        looked = [line.name for line in selected] or ["no line matched its conditions"]
        return judged(findings, *looked)

    spec = RuleSpec(
        declared.id,
        declared.version,
        declared.severity,
        declared.message,
        source=RuleSource.MANIFEST,
    )
    return Rule(spec, check)

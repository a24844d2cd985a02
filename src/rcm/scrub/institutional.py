"""The scrub's 837I edits: they judge institutional encounters only (``claim_type``), whose claims a payer
rejects without a billable type of bill, a revenue code on every line, an attending provider with a valid
NPI, a patient status, and a statement period that holds the services. Registered with the built-in rules
when this module is imported (``rcm.scrub.service`` does)."""

from __future__ import annotations

from rcm.providers.npi import npi_check_digit_valid
from rcm.scrub.inputs import InstitutionalIn
from rcm.scrub.rules import Finding, ScrubContext, Severity, Verdict, fired, judged, passed, rule
from rcm.tenancy.vocabulary import ClaimType

INSTITUTIONAL = ClaimType.INSTITUTIONAL

# NUBC type of bill, first two digits (UB-04 form locator 4): the facility types and bill classifications
# in use. 3x home health (32-34), 4x religious non-medical (41, 43), 6x intermediate care (65, 66), 7x
# clinics (71 RHC, 72 ESRD, 73 FQHC, 74 ORF, 75 CORF, 76 CMHC, 77 FQHC, 78 freestanding ED, 79 other), 8x
# special facilities (81-86, 89).
FACILITY_TYPES = frozenset(
    {"11", "12", "13", "14", "18", "21", "22", "23", "28", "32", "33", "34", "41", "43", "65", "66"}
    | {"71", "72", "73", "74", "75", "76", "77", "78", "79", "81", "82", "83", "84", "85", "86", "89"}
)
# Inpatient bills: the 837I requires the admission date (DTP*435) and type (CL101) on them.
INPATIENT_TYPES = frozenset({"11", "12", "18", "21", "28", "41", "65", "66", "86"})
# Frequency 1 (admit through discharge) is what intake bills; 7 and 8 are the claim's own (replacement and
# void, made by the claims workflow). Interim (2-4), late-charge (5) and others are not supported yet.
BILLED_FREQUENCY = "1"
# Revenue code 0001 is the UB-04's total line: never a service line of the 837I.
TOTAL_REVENUE_CODE = "0001"


def _facts(ctx: ScrubContext) -> InstitutionalIn | None:
    return ctx.input.institutional


@rule(
    "BILL-TYPE",
    "2026.1",
    Severity.ERROR,
    "An institutional claim has a billable type of bill",
    claim_type=INSTITUTIONAL,
)
def bill_type(ctx: ScrubContext) -> Verdict:
    facts = _facts(ctx)
    value = facts.type_of_bill if facts else None
    if value is None:
        return fired(
            [Finding("The institutional encounter has no type of bill (institutional/type_of_bill).")]
        )
    findings = []
    if value[:2] not in FACILITY_TYPES:
        findings.append(
            Finding(f"The type of bill {value} names no facility type and classification in use.")
        )
    if value[2] != BILLED_FREQUENCY:
        findings.append(
            Finding(
                f"The type of bill {value} has frequency {value[2]}: only 1 (admit through discharge) is"
                " billed from an encounter; corrections and voids go as replacement and void claims."
            )
        )
    return judged(findings, f"type of bill {value}")


@rule(
    "REVENUE-CODES",
    "2026.1",
    Severity.ERROR,
    "Every line of an institutional claim has a revenue code",
    claim_type=INSTITUTIONAL,
)
def revenue_codes(ctx: ScrubContext) -> Verdict:
    findings = []
    for line in ctx.input.lines:
        if line.revenue_code is None:
            findings.append(
                Finding(
                    f"{line.name.capitalize()} has no revenue code (charges/revenue_code).", line.line_number
                )
            )
        elif line.revenue_code == TOTAL_REVENUE_CODE:
            findings.append(
                Finding(f"{line.name.capitalize()} has revenue code 0001, the total line.", line.line_number)
            )
    return judged(findings, *(f"{line.name}: revenue code {line.revenue_code}" for line in ctx.input.lines))


@rule(
    "ATTENDING-NPI",
    "2026.1",
    Severity.ERROR,
    "An institutional claim names an attending provider whose NPI passes its check digit",
    claim_type=INSTITUTIONAL,
)
def attending_npi(ctx: ScrubContext) -> Verdict:
    facts = _facts(ctx)
    npi = facts.attending_npi if facts else None
    if npi is None:
        return fired(
            [
                Finding(
                    "The institutional encounter names no attending provider"
                    " (institutional/attending_provider)."
                )
            ]
        )
    if not npi_check_digit_valid(npi):
        return fired(
            [Finding(f"The attending provider's NPI {npi} fails its check digit.")], f"attending NPI {npi}"
        )
    return passed(f"attending NPI {npi}")


@rule(
    "ADMISSION",
    "2026.1",
    Severity.ERROR,
    "An institutional claim has a patient status; an inpatient one its admission date and type",
    claim_type=INSTITUTIONAL,
)
def admission(ctx: ScrubContext) -> Verdict:
    facts = _facts(ctx)
    findings = []
    if facts is None or facts.patient_status is None:
        findings.append(
            Finding("The institutional encounter has no patient status (institutional/patient_status).")
        )
    bill = facts.type_of_bill if facts else None
    if facts is not None and bill is not None and bill[:2] in INPATIENT_TYPES:
        if facts.admission_date is None:
            findings.append(
                Finding(f"The inpatient bill {bill} has no admission date (institutional/admission_date).")
            )
        if facts.admission_type is None:
            findings.append(
                Finding(f"The inpatient bill {bill} has no admission type (institutional/admission_type).")
            )
    looked = [f"type of bill {bill}"] if bill else []
    return judged(findings, *looked, f"patient status {facts.patient_status if facts else None}")


@rule(
    "STATEMENT-PERIOD",
    "2026.1",
    Severity.ERROR,
    "The statement period starts before it ends, is not in the future, and holds every service date",
    claim_type=INSTITUTIONAL,
)
def statement_period(ctx: ScrubContext) -> Verdict:
    facts = _facts(ctx)
    days = ctx.input.service_dates
    # Without one, the claim's statement period is its lines' dates (rcm.claims.parties): sane by design.
    start = (facts.statement_start if facts else None) or days[0]
    end = (facts.statement_end if facts else None) or days[-1]
    findings = []
    if end < start:
        findings.append(Finding(f"The statement period ends on {end}, before it starts on {start}."))
    if end > ctx.latest:
        findings.append(Finding(f"The statement period ends on {end}, in the future."))
    findings += [
        Finding(
            f"The service date {line.service_date} of {line.name} is outside the statement period.",
            line.line_number,
        )
        for line in ctx.input.lines
        if not start <= line.service_date <= end
    ]
    admitted = facts.admission_date if facts else None
    if admitted is not None and admitted > start:
        findings.append(
            Finding(f"The admission date {admitted} is after the statement period starts ({start}).")
        )
    return judged(findings, f"statement period {start} to {end}")

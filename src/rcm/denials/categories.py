"""What a denial is, and which of nine documented categories it falls in, from its CARC and RARC codes.

**What counts as a denial.** An 835 adjustment (CAS) in group CO (contractual obligation), PI (payer
initiated) or OA (other adjustment) whose Claim Adjustment Reason Code is not a routine pricing reduction
(``ROUTINE``: 45 charge over the fee schedule, 253 sequestration, 42/44/131/144 discounts and incentives,
59 multiple-procedure rules, 94 processed in excess of charges, 23 the prior payer's adjudication). PR
(patient responsibility: deductible, coinsurance, copay) is never a denial: the patient owes it. A claim
paid nothing (CLP02 4, or processed with CLP04 = 0) is a denial even when the payer sent no such CAS.

**Categories.** The reason code decides (``CARC_CATEGORIES``); a code the table does not know is
``other``. When the CARC is generic (16 "lacks information", 96 "non-covered charge", 125 "submission or
billing error", 252 "documentation required", or any code mapped to ``other``), the first remark code
(RARC, from LQ*HE or MOA/MIA) that the RARC table knows refines it (``RARC_CATEGORIES``: M51 procedure
code → coding, N54 → authorization...).

| category | CARC |
|---|---|
| eligibility | 22 26 27 31 32 33 109 119 177 200 204 |
| authorization | 15 38 39 62 197 198 243 288 |
| coding | 4 5 6 7 8 9 10 11 12 146 181 182 189 199 |
| medical necessity | 50 55 56 150 151 152 167 |
| timely filing | 29 |
| duplicate | 18 B13 |
| bundling | 97 231 234 236 B15 |
| missing information | 16 125 206 207 208 226 227 251 252 |
| other | everything else (96 non-covered, 133 pending review, A1...) unless a RARC refines it |

The mapping follows the X12 code list's descriptions of each code (Washington Publishing Company's CARC
and RARC lists) as billing teams commonly group them; it is a starting point a practice's analytics can be
read against, not a payer's own taxonomy.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence


class DenialCategory(enum.StrEnum):
    ELIGIBILITY = "eligibility"
    AUTHORIZATION = "authorization"
    CODING = "coding"
    MEDICAL_NECESSITY = "medical_necessity"
    TIMELY_FILING = "timely_filing"
    DUPLICATE = "duplicate"
    BUNDLING = "bundling"
    MISSING_INFORMATION = "missing_information"
    OTHER = "other"


C = DenialCategory
# CAS01 groups whose adjustments can be denials (PR is the patient's share; CR is not a 5010 group).
DENIAL_GROUPS = frozenset({"CO", "OA", "PI"})
# Pricing reductions, not denials: the payer paid the service, at the contracted or regulated amount.
ROUTINE = frozenset({"45", "253", "42", "44", "131", "144", "59", "94", "23"})

# fmt: off
CARC_CATEGORIES: dict[str, DenialCategory] = {
    # Eligibility and coverage: the patient, the dates or the plan's benefits.
    "22": C.ELIGIBILITY,   # may be covered by another payer (coordination of benefits)
    "26": C.ELIGIBILITY,   # expenses incurred prior to coverage
    "27": C.ELIGIBILITY,   # expenses incurred after coverage terminated
    "31": C.ELIGIBILITY,   # patient cannot be identified as our insured
    "32": C.ELIGIBILITY,   # our records indicate the dependent is not an eligible dependent
    "33": C.ELIGIBILITY,   # insured has no dependent coverage
    "109": C.ELIGIBILITY,  # not covered by this payer/contractor: send to the correct payer
    "119": C.ELIGIBILITY,  # benefit maximum for this time period or occurrence has been reached
    "177": C.ELIGIBILITY,  # patient has not met the required eligibility requirements
    "200": C.ELIGIBILITY,  # expenses incurred during lapse in coverage
    "204": C.ELIGIBILITY,  # not covered under the patient's current benefit plan
    # Authorization, pre-certification and referral.
    "15": C.AUTHORIZATION,   # authorization number missing, invalid, or does not apply
    "38": C.AUTHORIZATION,   # services not provided or authorized by designated (network) providers
    "39": C.AUTHORIZATION,   # services denied at the time authorization/pre-certification was requested
    "62": C.AUTHORIZATION,   # absence of, or exceeded, pre-certification/authorization
    "197": C.AUTHORIZATION,  # precertification/authorization/notification/pre-treatment absent
    "198": C.AUTHORIZATION,  # precertification/notification/authorization/pre-treatment exceeded
    "243": C.AUTHORIZATION,  # services not authorized by network/primary care providers
    "288": C.AUTHORIZATION,  # referral absent
    # Coding: the codes, modifiers or their fit with the patient, the place or the provider.
    "4": C.CODING,    # procedure code inconsistent with the modifier used, or a required modifier missing
    "5": C.CODING,    # procedure code/type of bill inconsistent with the place of service
    "6": C.CODING,    # procedure/revenue code inconsistent with the patient's age
    "7": C.CODING,    # procedure/revenue code inconsistent with the patient's gender
    "8": C.CODING,    # procedure code inconsistent with the provider type/specialty (taxonomy)
    "9": C.CODING,    # diagnosis inconsistent with the patient's age
    "10": C.CODING,   # diagnosis inconsistent with the patient's gender
    "11": C.CODING,   # diagnosis inconsistent with the procedure
    "12": C.CODING,   # diagnosis inconsistent with the provider type
    "146": C.CODING,  # diagnosis was invalid for the date(s) of service reported
    "181": C.CODING,  # procedure code was invalid on the date of service
    "182": C.CODING,  # procedure modifier was invalid on the date of service
    "189": C.CODING,  # "not otherwise classified"/"unlisted" code used when a specific code exists
    "199": C.CODING,  # revenue code and procedure code do not match
    # Medical necessity and coverage policy.
    "50": C.MEDICAL_NECESSITY,   # non-covered: not deemed a medical necessity by the payer
    "55": C.MEDICAL_NECESSITY,   # procedure/treatment/drug deemed experimental/investigational
    "56": C.MEDICAL_NECESSITY,   # procedure/treatment not deemed proven to be effective
    "150": C.MEDICAL_NECESSITY,  # information submitted does not support this level of service
    "151": C.MEDICAL_NECESSITY,  # information submitted does not support this many/frequency of services
    "152": C.MEDICAL_NECESSITY,  # information submitted does not support this length of service
    "167": C.MEDICAL_NECESSITY,  # this (these) diagnosis(es) is (are) not covered
    "29": C.TIMELY_FILING,  # the time limit for filing has expired
    "18": C.DUPLICATE,   # exact duplicate claim/service
    "B13": C.DUPLICATE,  # previously paid: payment may have been provided in a previous payment
    # Bundling and NCCI edits.
    "97": C.BUNDLING,   # included in the allowance for another service already adjudicated
    "231": C.BUNDLING,  # mutually exclusive procedures cannot be done in the same day/setting
    "234": C.BUNDLING,  # this procedure is not paid separately
    "236": C.BUNDLING,  # not compatible with another procedure on the same day (NCCI)
    "B15": C.BUNDLING,  # requires a qualifying service that has not been received/adjudicated
    # Missing or invalid information and documentation.
    "16": C.MISSING_INFORMATION,   # claim/service lacks information or has submission/billing error(s)
    "125": C.MISSING_INFORMATION,  # submission/billing error(s)
    "206": C.MISSING_INFORMATION,  # National Provider Identifier missing
    "207": C.MISSING_INFORMATION,  # National Provider Identifier invalid
    "208": C.MISSING_INFORMATION,  # National Provider Identifier not matched
    "226": C.MISSING_INFORMATION,  # information requested from the billing/rendering provider not provided
    "227": C.MISSING_INFORMATION,  # information requested from the patient/insured not provided
    "251": C.MISSING_INFORMATION,  # attachment received lacked the content required
    "252": C.MISSING_INFORMATION,  # an attachment/other documentation is required to adjudicate
}

RARC_CATEGORIES: dict[str, DenialCategory] = {
    "N30": C.ELIGIBILITY,    # patient ineligible for this service
    "N130": C.ELIGIBILITY,   # consult plan benefit documents for restrictions for this service
    "N54": C.AUTHORIZATION,  # claim inconsistent with pre-certified/authorized services
    "M62": C.AUTHORIZATION,  # missing/incomplete/invalid treatment authorization code
    "M51": C.CODING,         # missing/incomplete/invalid procedure code(s)
    "M20": C.CODING,         # missing/incomplete/invalid HCPCS
    "M76": C.CODING,         # missing/incomplete/invalid diagnosis or condition
    "M77": C.CODING,         # missing/incomplete/invalid place of service
    "M81": C.CODING,         # code to the highest level of specificity
    "N115": C.MEDICAL_NECESSITY,  # decision based on a Local Coverage Determination (LCD)
    "N386": C.MEDICAL_NECESSITY,  # decision based on a National Coverage Determination (NCD)
    "N362": C.MEDICAL_NECESSITY,  # days or units of service exceed our acceptable maximum
    "M25": C.MEDICAL_NECESSITY,   # information does not substantiate the need for this level of service
    "M86": C.DUPLICATE,      # payment already made for the same/similar procedure within a set time frame
    "N522": C.DUPLICATE,     # duplicate of a claim processed, or to be processed, as a crossover claim
    "N20": C.BUNDLING,       # service not payable with another service rendered on the same date
    "M80": C.BUNDLING,       # not covered when performed with a previously processed service
    "MA130": C.MISSING_INFORMATION,  # incomplete/invalid information: resubmit as a new claim
    "M127": C.MISSING_INFORMATION,   # missing patient medical record for this service
    "N290": C.MISSING_INFORMATION,   # missing/incomplete/invalid rendering provider primary identifier
    "N286": C.MISSING_INFORMATION,   # missing/incomplete/invalid referring provider primary identifier
    "N479": C.MISSING_INFORMATION,   # missing explanation of benefits (coordination of benefits)
    "MA04": C.MISSING_INFORMATION,   # secondary payment needs the primary payer's payment information
}
# fmt: on

# Reason codes too generic to stand alone when a remark code says more.
GENERIC_CARCS = frozenset({"16", "96", "125", "252"})


def is_denial(group: str, reason: str) -> bool:
    """Whether one CAS (group, CARC) denies (part of) a service rather than prices it."""
    return group in DENIAL_GROUPS and reason not in ROUTINE


def classify(carc: str | None, rarcs: Iterable[str] = ()) -> DenialCategory:
    """The category of a denial whose main reason is ``carc`` with the remark codes ``rarcs``."""
    category = CARC_CATEGORIES.get(carc or "", C.OTHER)
    if carc is None or carc in GENERIC_CARCS or category is C.OTHER:
        for remark in rarcs:
            refined = RARC_CATEGORIES.get(remark)
            if refined is not None:
                return refined
    return category


def main_reason(adjustments: Sequence[tuple[str, str, int]]) -> tuple[str, str] | None:
    """The (group, CARC) that denied the most of the amount (the first on a tie); None when none."""
    if not adjustments:
        return None
    group, reason, _ = max(adjustments, key=lambda a: a[2])
    return group, reason

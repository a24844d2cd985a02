"""The anomaly rules of the auditor console, and what counts as a disclosure. Pure functions over grouped
counts: the SQL is in ``repository``, the orchestration (and the audit of every read) in ``service``.

Each flag names its rule and carries the rule's text, so an auditor reads why it was raised.
"""

from __future__ import annotations

import enum
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, time, timedelta

# --- anomaly rules -----------------------------------------------------------------------------------------


class AnomalyRule(enum.StrEnum):
    VOLUME_SPIKE = "volume_spike"
    AFTER_HOURS = "after_hours"
    BREAK_GLASS = "break_glass"
    SAME_FAMILY_NAME = "same_family_name"


@dataclass(frozen=True, slots=True)
class SpikeRule:
    """A person's day is a spike when they touched patients' records at least ``minimum`` times and more
    than ``sigmas`` standard deviations above their own daily mean in that practice over the
    ``baseline_days`` days before (days without activity count as zero)."""

    baseline_days: int = 28
    sigmas: float = 3.0
    minimum: int = 20

    def text(self) -> str:
        return (
            f"events touching a patient record by this person in this practice on one local day >= "
            f"{self.minimum} and > mean + {self.sigmas:g} x standard deviation of the same person's daily "
            f"counts in the {self.baseline_days} days before (days without activity count as 0)"
        )


@dataclass(frozen=True, slots=True)
class Spike:
    day: date
    count: int
    mean: float
    stddev: float
    threshold: float


def spikes(daily: Mapping[date, int], days: Iterable[date], rule: SpikeRule) -> list[Spike]:
    """The days of ``days`` on which the counts in ``daily`` (one person, one practice) spike."""
    found = []
    for day in sorted(set(days)):
        count = daily.get(day, 0)
        if count < rule.minimum:
            continue
        history = [daily.get(day - timedelta(days=n), 0) for n in range(1, rule.baseline_days + 1)]
        mean = sum(history) / len(history)
        stddev = math.sqrt(sum((h - mean) ** 2 for h in history) / len(history))
        threshold = mean + rule.sigmas * stddev
        if count > threshold:
            found.append(Spike(day, count, round(mean, 2), round(stddev, 2), round(threshold, 2)))
    return found


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """A practice's working hours in its time zone, Monday to Friday."""

    timezone: str
    start: time
    end: time

    @classmethod
    def parse(cls, timezone: str, hours: str) -> BusinessHours:
        """``hours`` as ``HH:MM-HH:MM`` (ValueError if malformed or empty)."""
        match = re.fullmatch(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})", hours)
        if match is None:
            raise ValueError("business hours are HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start, end = time(h1, m1), time(h2, m2)
        if not start < end:
            raise ValueError("business hours must start before they end")
        return cls(timezone, start, end)

    def text(self) -> str:
        return (
            f"an event touching a patient record by a person outside {self.start:%H:%M}-{self.end:%H:%M} "
            f"Monday to Friday, or on a Saturday or Sunday, in {self.timezone} (one flag per person, "
            f"practice and local day)"
        )


BREAK_GLASS_TEXT = (
    "any use of break-glass: the grant's own events (break_glass.*) and every access made under a grant "
    "(detail access = break_glass), one flag per person, practice and grant"
)
SAME_FAMILY_NAME_TEXT = (
    "a person touched the record of a patient whose family name equals the last word of the person's "
    "display name (compared case-, accent- and punctuation-insensitively; the names are compared inside "
    "RCM, never returned, and the read of the patients' family names is itself audited)"
)


def name_key(value: str) -> str:
    """A name for comparison: accents, case, punctuation and spacing removed ("O'Brien" = "obrien")."""
    decomposed = unicodedata.normalize("NFKD", value)
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return "".join(c for c in letters.casefold() if c.isalnum())


def family_name_of(display_name: str) -> str | None:
    """A person's family name as the directory knows it: the last word of the display name."""
    words = display_name.replace(",", " ").split()
    if len(words) < 2:
        return None  # one word says nothing reliable about a family name
    key = name_key(words[-1])
    return key or None


# --- disclosures (45 CFR 164.528) --------------------------------------------------------------------------


class DisclosureCategory(enum.StrEnum):
    CLAIM_SUBMISSION = "claim_submission"  # an 837 naming the patient went to the payer
    PAYER_EXCHANGE = "payer_exchange"  # 270 eligibility, 276 status inquiry, an appeal sent to the payer
    FILE_DOWNLOAD = "file_download"  # a person took a document or statement of the patient out of RCM
    BREAK_GLASS = "break_glass"  # the patient's PHI reached under an emergency grant


# Event types whose PHI left RCM for someone else, and their category; an access under break-glass counts
# whatever its type.
DISCLOSURE_EVENTS: Mapping[str, DisclosureCategory] = {
    "eligibility_check.create": DisclosureCategory.PAYER_EXCHANGE,
    "claim.status_inquiry": DisclosureCategory.PAYER_EXCHANGE,
    "appeal.submit": DisclosureCategory.PAYER_EXCHANGE,
    "encounter_document.download": DisclosureCategory.FILE_DOWNLOAD,
    "statement.download": DisclosureCategory.FILE_DOWNLOAD,
}

# Why a category is left out of the accounting a patient may request (None: it must be accounted for).
EXEMPTIONS: Mapping[DisclosureCategory, str | None] = {
    DisclosureCategory.CLAIM_SUBMISSION: "payment: 45 CFR 164.528(a)(1)(i), 164.506(c)",
    DisclosureCategory.PAYER_EXCHANGE: "payment: 45 CFR 164.528(a)(1)(i), 164.506(c)",
    DisclosureCategory.FILE_DOWNLOAD: "treatment, payment or health care operations: 45 CFR 164.528(a)(1)(i)",
    DisclosureCategory.BREAK_GLASS: None,
}

DISCLOSURE_DEFINITION = (
    "A disclosure is a successful event whose PHI of this patient left RCM or was reached outside the normal "
    "path: an 837 claim sent to a payer (claim_submission; the claim's latest batch), a 270 eligibility "
    "check, 276 status inquiry or appeal sent to a payer (payer_exchange), a document or statement file "
    "downloaded by a person (file_download), and any access under a break-glass grant (break_glass). "
    "Reads inside RCM by the practice's own system and assigned staff are uses, not disclosures (see the "
    "patient timeline for those). Disclosures for treatment, payment or health care operations are exempt "
    "from the accounting a patient may request (45 CFR 164.528(a)(1)(i)): they are listed with "
    "accountable=false and the exemption; accountable_only=true leaves them out. The default window is "
    "the six years before the request (164.528(a)(1))."
)

"""The KPI vocabulary, shared by the statements, the services and the API."""

from __future__ import annotations

import enum


class KpiKey(enum.StrEnum):
    GROSS_COLLECTION_RATE = "gross_collection_rate"
    NET_COLLECTION_RATE = "net_collection_rate"
    DAYS_IN_AR = "days_in_ar"
    AR_OVER_90_DAYS = "ar_over_90_days"
    DENIAL_RATE = "denial_rate"
    CLEAN_CLAIM_RATE = "clean_claim_rate"
    FIRST_PASS_RESOLUTION_RATE = "first_pass_resolution_rate"  # noqa: S105 (a KPI name)
    DAYS_TO_PAYMENT = "days_to_payment"


class KpiUnit(enum.StrEnum):
    RATIO = "ratio"  # value = numerator / denominator (0.95 is 95%)
    DAYS = "days"  # value = numerator / denominator x scale

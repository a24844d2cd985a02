"""Eligibility (270/271) and claim status inquiries (276/277): what was asked of a payer and what it said."""

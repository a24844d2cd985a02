"""Patients and their insurance coverage (PHI, encrypted field by field)."""

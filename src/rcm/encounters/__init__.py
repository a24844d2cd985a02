"""Encounter intake: providers, encounters, diagnoses, charge lines, and the coding work item."""

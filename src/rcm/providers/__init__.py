"""Rendering and billing providers of a practice (no PHI): matched by NPI, flagged when it fails its check."""

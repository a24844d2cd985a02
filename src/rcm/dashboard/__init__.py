"""The owner's dashboard: saved views per user and the claims behind a figure (drill-down)."""

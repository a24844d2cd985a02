"""Coding work: what a coder sees and saves for a coding work item (drafts and completed versions, queries to
the practice), the practices' fee schedules, and QA (blind reviews of sampled work, agreement per coder)."""

"""Raw X12 kept: every interchange sent or received, encrypted as a blob and linked to what it produced."""

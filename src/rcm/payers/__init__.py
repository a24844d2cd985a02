"""The payer directory (global: who the billing company bills, and which connector serves each service) and
practices' payer enrollment (tenant-owned: which directory payers a practice bills, as whom)."""

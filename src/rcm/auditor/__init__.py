"""The auditor console: accounting of disclosures, timelines and anomaly flags over the access log."""

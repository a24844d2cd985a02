"""Bulk intake: NDJSON or CSV files of encounters, run as resumable jobs on the worker."""

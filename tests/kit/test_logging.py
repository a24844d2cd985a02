from __future__ import annotations

import json
import logging

from rcm.kit.telemetry import JsonFormatter


def test_json_log_lines_carry_only_whitelisted_extras() -> None:
    record = logging.LogRecord("rcm.test", logging.WARNING, __file__, 1, "refused %s", ("request",), None)
    record.__dict__.update({"error_type": "IntegrityError", "status": 409, "family_name": "Leeward"})
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "refused request"
    assert entry["level"] == "WARNING"
    assert entry["error_type"] == "IntegrityError"
    assert entry["status"] == 409
    # Arbitrary attributes never reach the line: a value put on a record by mistake stays out of the logs.
    assert "family_name" not in entry
    assert "Leeward" not in json.dumps(entry)

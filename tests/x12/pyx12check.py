"""pyx12's 5010 validation of a file we wrote, through its library API (x12n_document, as x12valid uses)."""

from __future__ import annotations

import io
import json
import logging

import pyx12.params
import pyx12.x12n_document


def pyx12_errors(content: str) -> list[str]:
    """Every error pyx12 reports for ``content`` (empty when it finds the file valid)."""
    logging.getLogger("pyx12").setLevel(logging.CRITICAL)
    param = pyx12.params.params()
    report = io.StringIO()
    valid = pyx12.x12n_document.x12n_document(
        param=param, src_file=io.StringIO(content), fd_997=None, fd_html=None, fd_json=report
    )
    errors = [json.dumps(item, sort_keys=True) for item in _errors(json.loads(report.getvalue() or "{}"))]
    if not valid and not errors:
        errors.append("pyx12 judged the file invalid without naming an error")
    return errors


def _errors(node: object) -> list[object]:
    """Every entry of every ``errors`` list in pyx12's JSON report (interchange, group, set, segment)."""
    if isinstance(node, list):
        return [found for item in node for found in _errors(item)]
    if isinstance(node, dict):
        own = node.get("errors") or []
        return list(own) + [
            found for key, value in node.items() if key != "errors" for found in _errors(value)
        ]
    return []

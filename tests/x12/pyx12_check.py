"""pyx12's 5010 validation of a file we wrote: the list of its errors (empty when it finds none).

pyx12 reports through an error handler; its JSON error document lists every error at the interchange,
group, transaction set, segment and element levels. ``x12n_document`` returns False on any of them.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pyx12.params
import pyx12.x12n_document


def _errors(node: Any, where: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        here = f"{where}/{node.get('seg_id') or node.get('trn_set_id') or ''}".rstrip("/")
        for key, value in node.items():
            if key == "errors" and isinstance(value, list):
                found += [f"{here}: {error.get('err_cde')} {error.get('err_str')}" for error in value]
            else:
                found += _errors(value, here)
    elif isinstance(node, list):
        for item in node:
            found += _errors(item, where)
    return found


def pyx12_errors(content: str, directory: Path) -> list[str]:
    path = directory / "written.x12"
    path.write_text(content)
    logging.getLogger("pyx12").setLevel(logging.CRITICAL)
    report = io.StringIO()
    valid = pyx12.x12n_document.x12n_document(pyx12.params.params(), str(path), None, None, fd_json=report)
    errors = _errors(json.loads(report.getvalue()))
    if not valid and not errors:
        errors = ["pyx12 rejected the file without an itemised error"]
    return errors

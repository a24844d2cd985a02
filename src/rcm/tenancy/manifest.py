"""Tenant manifests: declarative YAML validated against ``tenants/schema.json``."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker

from rcm.kit.errors import FieldError, InvalidInput
from rcm.kit.package_data import data_path


@cache
def _validator() -> Draft202012Validator:
    schema = json.loads(data_path("tenants", "schema.json").read_text())
    return Draft202012Validator(schema, format_checker=FormatChecker())


def validate_manifest(document: object) -> dict[str, Any]:
    errors = [
        FieldError("".join(f"/{p}" for p in e.absolute_path), e.message)
        for e in _validator().iter_errors(document)
    ]
    if errors:
        raise InvalidInput("The tenant manifest does not match tenants/schema.json.", errors=errors)
    assert isinstance(document, dict)
    return document


def load_manifest(path: Path) -> dict[str, Any]:
    return validate_manifest(yaml.safe_load(path.read_text()))

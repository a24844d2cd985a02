"""``tenants/schema.json`` is generated from the manifest model; the committed copy must equal it."""

from __future__ import annotations

import difflib
import json

from jsonschema import Draft202012Validator

from rcm.kit.package_data import data_path
from rcm.tenancy.manifest import SCHEMA_COMMAND, manifest_schema, render_schema


def test_committed_schema_is_the_generated_one() -> None:
    committed = data_path("tenants", "schema.json").read_text()
    generated = render_schema()
    diff = "".join(
        difflib.unified_diff(
            committed.splitlines(keepends=True),
            generated.splitlines(keepends=True),
            "tenants/schema.json (committed)",
            "TenantManifest (generated)",
        )
    )
    stale = f"tenants/schema.json is stale; regenerate it with `{SCHEMA_COMMAND}`:\n{diff}"
    assert committed == generated, stale


def test_generated_schema_is_valid_draft_2020_12_and_accepts_the_demo_manifests() -> None:
    import yaml

    schema = manifest_schema()
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    paths = [p for p in sorted(data_path("tenants", "demo").glob("*.yaml")) if p.name != "people.yaml"]
    for path in paths:
        assert not list(validator.iter_errors(yaml.safe_load(path.read_text()))), path
    # What editors see refuses what the loader refuses: an unknown key, a malformed NPI.
    bad = {"slug": "ok-slug", "name": "X", "billing_provider": {"npi": "12", "name": "Y"}, "extra": 1}
    pointers = {"/".join(map(str, e.absolute_path)) for e in validator.iter_errors(bad)}
    assert pointers == {"", "billing_provider/npi"}
    assert json.loads(data_path("tenants", "schema.json").read_text())["$id"].endswith("tenant-manifest.json")

"""``rcm remit import FILE``: each set routed to its practice by the payee NPI, posted, a JSON summary
printed; the same payment in another file refused (every set a duplicate: exit 1, one line); a file that is
not a valid 835 refused with the segment and position, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.config import get_settings
from rcm.tenancy.models import Tenant
from tests.claims.conftest import enrolled_practice

PUBLIC = Path(__file__).parents[1] / "x12" / "fixtures" / "public" / "835"
PAYEE_NPI = "9999999995"  # N1*PE XX of the tastypackets files


@pytest.fixture
async def payee(control_sessions: async_sessionmaker[AsyncSession]) -> Tenant:
    return await enrolled_practice(
        control_sessions, "payee", billing_provider={"npi": PAYEE_NPI, "name": "Payee Group"}
    )


def test_remit_import_posts_and_refuses_repeats(
    payee: Tenant, admin_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rcm.cli import main

    monkeypatch.setenv("RCM_ENV", "test")
    monkeypatch.setenv("RCM_DATABASE_URL", admin_url)
    monkeypatch.setenv("RCM_DATA_DIR", str(tmp_path))
    invalid = tmp_path / "not.835"
    invalid.write_bytes((PUBLIC / "affect-therapeutics-edi-835-parser__sample_835.txt").read_bytes())
    get_settings.cache_clear()
    try:
        first = CliRunner().invoke(
            main, ["remit", "import", str(PUBLIC / "tastypackets-x12-parser__multi-line-not-delimited.edi")]
        )
        repeat = CliRunner().invoke(
            main, ["remit", "import", str(PUBLIC / "tastypackets-x12-parser__profee-multiple.edi")]
        )
        refused = CliRunner().invoke(main, ["remit", "import", str(invalid)])
    finally:
        get_settings.cache_clear()
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert summary["transaction_sets"] == summary["posted"] == 1
    assert summary["practices"] == {payee.slug: 1}
    assert (summary["claims_matched"], summary["claims_unmatched"]) == (0, 3)
    assert (summary["posted_cents"], summary["unapplied_cents"]) == (0, 4575)
    assert summary["held"] == summary["duplicates"] == summary["unassigned"] == []

    assert repeat.exit_code == 1
    assert len(json.loads(repeat.stdout)["duplicates"]) == 156
    assert (
        repeat.stderr.strip() == "refused: every transaction set in the file was received before (duplicate)"
    )

    assert refused.exit_code == 1
    assert refused.stdout == ""
    assert refused.stderr.strip().startswith("refused: not a valid 835: segment ")
    assert "Traceback" not in refused.output

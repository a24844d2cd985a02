from __future__ import annotations

from tests.support import Api


async def test_slug_with_nul_is_the_same_404_as_an_unknown_tenant(practice_api: Api) -> None:
    """Found by the fuzz probe: a NUL in the slug reached the driver and every tenant route answered 500."""
    unknown = await practice_api.get("/patients", slug="no-such-practice")
    with_nul = await practice_api.get("/patients", slug="a%00b")
    assert unknown.status_code == with_nul.status_code == 404
    assert with_nul.json()["detail"] == unknown.json()["detail"]

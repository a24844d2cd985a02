"""The claims tests' practices, intake and claim builder, for the report tests."""

from tests.claims.conftest import (  # noqa: F401 - fixtures
    claims,
    intake,
    make_staff,
    other_intake,
    other_practice,
    payer_directory,
    practice,
)

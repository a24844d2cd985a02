"""The secret resolver: env and file providers; values never in messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from rcm.kit.secrets import SecretResolver, SecretUnavailable


def test_env_provider() -> None:
    resolver = SecretResolver(environ={"PRACTICE_TIN": " 123456789\n"})
    assert resolver.resolve("env:PRACTICE_TIN").get_secret_value() == "123456789"
    with pytest.raises(SecretUnavailable, match="is not set"):
        resolver.resolve("env:OTHER_TIN")


def test_env_provider_refuses_the_servers_own_settings() -> None:
    resolver = SecretResolver(environ={"RCM_DATABASE_URL": "postgresql://secret"})
    with pytest.raises(SecretUnavailable) as refused:
        resolver.resolve("env:RCM_DATABASE_URL")
    assert "postgresql://secret" not in str(refused.value)


def test_file_provider_reads_only_under_the_secrets_dir(tmp_path: Path) -> None:
    (tmp_path / "tins").mkdir()
    (tmp_path / "tins" / "practice").write_text("98-7654321\n")
    (tmp_path.parent / "outside").write_text("123456789")
    resolver = SecretResolver(secrets_dir=tmp_path)
    assert resolver.resolve("file:tins/practice").get_secret_value() == "98-7654321"
    assert resolver.resolve("file:/tins/practice").get_secret_value() == "98-7654321"
    with pytest.raises(SecretUnavailable, match="leaves RCM_SECRETS_DIR"):
        resolver.resolve("file:../outside")
    with pytest.raises(SecretUnavailable, match="cannot be read"):
        resolver.resolve("file:tins/missing")
    with pytest.raises(SecretUnavailable, match="needs RCM_SECRETS_DIR"):
        SecretResolver().resolve("file:tins/practice")


def test_unknown_provider_and_value_never_in_repr() -> None:
    with pytest.raises(SecretUnavailable, match="provider 'vault'"):
        SecretResolver().resolve("vault:tin/practice")
    secret = SecretResolver(environ={"T": "123456789"}).resolve("env:T")
    assert "123456789" not in repr(secret)
    assert "123456789" not in str(secret)

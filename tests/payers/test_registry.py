"""The connector registry: entry points, endpoint URLs, secret references and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from rcm.kit.secrets import SecretResolver
from rcm.payers.connector import Endpoint, EndpointScheme, PermanentConnectorError, Submission
from rcm.payers.registry import UnknownConnector, build_config, installed_connectors, open_connector


def test_the_integrations_are_installed_as_entry_points() -> None:
    assert {"sftp", "rest"} <= set(installed_connectors())


def test_an_unknown_connector_is_named_with_the_installed_ones() -> None:
    with pytest.raises(UnknownConnector) as unknown:
        open_connector(
            build_config(
                connector="carrier-pigeon",
                endpoint="https://example.org/",
                submitter_id="S",
                receiver_id="R",
                credentials_reference=None,
                resolver=SecretResolver(environ={}),
            )
        )
    assert "no connector 'carrier-pigeon' is installed" in str(unknown.value)
    assert "rest" in str(unknown.value)
    assert "sftp" in str(unknown.value)


@pytest.mark.parametrize(
    ("url", "expected", "options"),
    [
        (
            "sftp://edi@ch.example:2222/home/edi?inbound=in&known_hosts=file:ch",
            (EndpointScheme.SFTP, "ch.example", 2222, "/home/edi", "edi"),
            {"inbound": "in", "known_hosts": "file:ch"},
        ),
        ("https://api.ch.example/v1", (EndpointScheme.HTTPS, "api.ch.example", None, "/v1", None), {}),
        ("sandbox:", (EndpointScheme.SANDBOX, "", None, "", None), {}),
    ],
)
def test_endpoint_forms(url: str, expected: tuple[object, ...], options: dict[str, str]) -> None:
    endpoint = Endpoint.parse(url)
    assert (endpoint.scheme, endpoint.host, endpoint.port, endpoint.path, endpoint.username) == expected
    assert dict(endpoint.options) == options


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://ch.example/", "scheme 'ftp' is not one of"),
        ("sftp://edi:hunter2@ch.example/", "carries a password"),
        ("https:///v1", "names no host"),
        ("http://ch.example/v1", "plain http is refused"),
        ("sftp://ch.example:99999/", "not a URL"),
        ("sftp://ch.example/?inbound=a&inbound=b", "given twice"),
    ],
)
def test_malformed_endpoints_are_permanent(url: str, reason: str) -> None:
    with pytest.raises(PermanentConnectorError, match=reason) as refused:
        Endpoint.parse(url, connector="sftp")
    assert "hunter2" not in str(refused.value)


def test_credentials_resolve_to_secrets_and_a_missing_one_names_only_its_reference(tmp_path: Path) -> None:
    (tmp_path / "kh").write_text("[ch.example]:22 ssh-ed25519 AAAA\n")
    resolver = SecretResolver(secrets_dir=tmp_path, environ={"CH_PASSWORD": "hunter2"})
    config = build_config(
        connector="sftp",
        endpoint="sftp://ch.example/?known_hosts=file:kh",
        submitter_id="S",
        receiver_id="R",
        credentials_reference="env:CH_PASSWORD",
        resolver=resolver,
    )
    assert config.credentials == SecretStr("hunter2")
    assert config.known_hosts == "[ch.example]:22 ssh-ed25519 AAAA"
    assert "hunter2" not in repr(config)
    with pytest.raises(PermanentConnectorError, match="credentials: 'env:CH_OTHER' is not set"):
        build_config(
            connector="sftp",
            endpoint="sftp://ch.example/",
            submitter_id="S",
            receiver_id="R",
            credentials_reference="env:CH_OTHER",
            resolver=resolver,
        )


@pytest.mark.parametrize(
    ("field", "value"),
    [("file_name", "../etc/passwd"), ("file_name", ".hidden"), ("interchange_control_number", "12")],
)
def test_a_submission_refuses_paths_and_bad_control_numbers(field: str, value: str) -> None:
    values = {"file_name": "clm-1.x12", "interchange_control_number": "000000001", "x12": b"ISA~"} | {
        field: value
    }
    with pytest.raises(ValueError, match=field):
        Submission(**values)  # type: ignore[arg-type]

"""Connectors found through the ``rcm.connectors`` entry-point group, and opened for one enrollment.

A package under ``integrations/`` declares ``[project.entry-points."rcm.connectors"] name = "pkg:Class"``;
the payer directory names that ``name`` per payer and service, and a practice's enrollment gives its
submitter and receiver ids and a credentials reference (``env:NAME`` / ``file:PATH``). ``build_config``
joins the three, resolving the secrets here (a connector never sees a reference, only a ``SecretStr``), and
``open_connector`` builds the connector it names. An unknown name is a permanent error that lists the
installed connectors.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

from pydantic import SecretStr

from rcm.kit.secrets import SecretResolver, SecretUnavailable
from rcm.payers.connector import (
    Connector,
    ConnectorConfig,
    ConnectorFactory,
    Endpoint,
    PermanentConnectorError,
)

ENTRY_POINT_GROUP = "rcm.connectors"
# Endpoint options that are references to a secret store entry, resolved before the connector sees them.
_KNOWN_HOSTS_OPTION = "known_hosts"


class UnknownConnector(PermanentConnectorError):
    def __init__(self, name: str, installed: list[str]) -> None:
        listed = ", ".join(installed) or "none"
        super().__init__(name, "load", f"no connector {name!r} is installed (installed: {listed})")


@cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def installed_connectors() -> list[str]:
    return sorted(_entry_points())


def load_factory(name: str) -> ConnectorFactory:
    entry = _entry_points().get(name)
    if entry is None:
        raise UnknownConnector(name, installed_connectors())
    factory: ConnectorFactory = entry.load()
    return factory


def build_config(
    *,
    connector: str,
    endpoint: str,
    submitter_id: str,
    receiver_id: str,
    credentials_reference: str | None,
    resolver: SecretResolver,
    timeout_seconds: float = 30.0,
) -> ConnectorConfig:
    """The connector's configuration; a secret that does not resolve is a permanent error naming the
    reference (never a value), since retrying will not make it appear."""
    parsed = Endpoint.parse(endpoint, connector=connector)

    def resolve(reference: str | None, what: str) -> SecretStr | None:
        if not reference:
            return None
        try:
            return resolver.resolve(reference)
        except SecretUnavailable as exc:
            raise PermanentConnectorError(connector, "configure", f"{what}: {exc}") from None

    known_hosts = resolve(parsed.options.get(_KNOWN_HOSTS_OPTION), "known_hosts")
    return ConnectorConfig(
        connector=connector,
        endpoint=parsed,
        submitter_id=submitter_id,
        receiver_id=receiver_id,
        credentials=resolve(credentials_reference, "credentials"),
        known_hosts=known_hosts.get_secret_value() if known_hosts else None,
        timeout_seconds=timeout_seconds,
    )


def open_connector(config: ConnectorConfig) -> Connector:
    """The connector ``config`` names, built for one enrollment (the caller closes it with ``aclose``)."""
    return load_factory(config.connector)(config)

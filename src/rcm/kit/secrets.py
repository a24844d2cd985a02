"""A small secret resolver: a manifest names a secret by reference (``env:NAME``, ``file:relative/path``),
never by value, and this module reads it when a rule or a claim needs it.

Two providers:

- ``env:NAME`` reads the process environment. Names must look like environment variables, and the server's
  own settings (``RCM_*``) are refused: a manifest must not be able to pull the database URL into a claim.
- ``file:PATH`` reads a file under ``RCM_SECRETS_DIR`` (a mounted secret volume); a path leaving that
  directory, or any file reference while the setting is unset, is refused.

Values are never logged, never put into an exception message, and never ``repr``-ed (``SecretStr``): an
error names the reference and what went wrong, which is all a biller or an operator needs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pydantic import SecretStr

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_FILE_BYTES = 4096


class SecretProvider(StrEnum):
    ENV = "env"
    FILE = "file"


class SecretUnavailable(Exception):
    """A reference that could not be read; the message names the reference, never a value."""


@dataclass(frozen=True, slots=True)
class SecretResolver:
    """Resolves ``provider:name`` references. ``environ`` defaults to the process environment."""

    secrets_dir: Path | None = None
    environ: Mapping[str, str] | None = None

    def resolve(self, reference: str) -> SecretStr:
        provider, sep, name = reference.partition(":")
        if not sep or not name:
            raise SecretUnavailable(f"{reference!r} is not a secret reference (provider:name)")
        if provider == SecretProvider.ENV:
            return self._env(reference, name)
        if provider == SecretProvider.FILE:
            return self._file(reference, name)
        known = ", ".join(p.value for p in SecretProvider)
        raise SecretUnavailable(f"{reference!r} uses the provider {provider!r}; this server reads {known}")

    def _env(self, reference: str, name: str) -> SecretStr:
        if not _ENV_NAME.match(name):
            raise SecretUnavailable(f"{reference!r} does not name an environment variable")
        if name.upper().startswith("RCM_"):
            raise SecretUnavailable(f"{reference!r} names one of the server's own settings")
        environ = os.environ if self.environ is None else self.environ
        value = environ.get(name)
        if value is None or not value.strip():
            raise SecretUnavailable(f"{reference!r} is not set")
        return SecretStr(value.strip())

    def _file(self, reference: str, name: str) -> SecretStr:
        if self.secrets_dir is None:
            raise SecretUnavailable(f"{reference!r} needs RCM_SECRETS_DIR, which is not set")
        root = self.secrets_dir.resolve()
        path = (root / name.lstrip("/")).resolve()
        if not path.is_relative_to(root):
            raise SecretUnavailable(f"{reference!r} leaves RCM_SECRETS_DIR")
        try:
            raw = path.read_bytes()[: _MAX_FILE_BYTES + 1]
        except OSError:
            raise SecretUnavailable(f"{reference!r} cannot be read") from None
        if len(raw) > _MAX_FILE_BYTES:
            raise SecretUnavailable(f"{reference!r} is larger than a secret")
        try:
            value = raw.decode().strip()
        except UnicodeDecodeError:
            raise SecretUnavailable(f"{reference!r} is not text") from None
        if not value:
            raise SecretUnavailable(f"{reference!r} is empty")
        return SecretStr(value)

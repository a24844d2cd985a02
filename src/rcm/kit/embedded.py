"""Embedded PostgreSQL from the ``pgserver`` wheel, for machines with nothing but Python.

``pgserver`` is the optional ``embedded`` extra (``make install`` takes it; the container image does not).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

MISSING = (
    "RCM_DATABASE_URL is not set and the embedded PostgreSQL is not installed: "
    "set RCM_DATABASE_URL or install rcm[embedded]"
)


class EmbeddedPostgresUnavailable(RuntimeError):
    """No database URL was configured and the ``embedded`` extra is not installed."""


def start_embedded_postgres(data_dir: Path, *, stop_on_exit: bool = True) -> str:
    """Start (or reuse) a PostgreSQL cluster under ``data_dir`` and return its superuser URL.

    The server listens on a Unix socket inside the data directory only.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); pgserver then uses /tmp.
        warnings.simplefilter("ignore")
        try:
            from pgserver import get_server  # type: ignore[attr-defined,unused-ignore]
        except ImportError as exc:
            raise EmbeddedPostgresUnavailable(MISSING) from exc

        # pgserver narrates every pg_ctl command at INFO, even from its exit hook, after a test runner or a
        # shell has closed the stream: only its warnings and errors are worth a line.
        logging.getLogger("pgserver").setLevel(logging.WARNING)
        data_dir.mkdir(parents=True, exist_ok=True)
        server: Any = get_server(str(data_dir.resolve()), cleanup_mode="stop" if stop_on_exit else None)
    uri: str = server.get_uri()
    return uri

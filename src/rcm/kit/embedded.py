"""Embedded PostgreSQL from the ``pgserver`` wheel, for machines with nothing but Python."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any


def start_embedded_postgres(data_dir: Path, *, stop_on_exit: bool = True) -> str:
    """Start (or reuse) a PostgreSQL cluster under ``data_dir`` and return its superuser URL.

    The server listens on a Unix socket inside the data directory only.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); pgserver then uses /tmp.
        warnings.simplefilter("ignore")
        from pgserver import get_server  # type: ignore[attr-defined,unused-ignore]

        server: Any = get_server(str(data_dir.resolve()), cleanup_mode="stop" if stop_on_exit else None)
    uri: str = server.get_uri()
    return uri

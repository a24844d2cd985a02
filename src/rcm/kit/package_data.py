"""Files that ship beside the code: Alembic's migrations and ini, ``tenants/schema.json``, the demo manifests.

They live at the repository root (the layout the project promises). The wheel carries them as package data
under ``rcm/_data`` (pyproject's force-include), read here through ``importlib.resources`` so an installed
package works from any directory. An editable install (``make install``) reads them from the checkout it was
installed from, which pip records per PEP 610, so a new migration is seen without reinstalling.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import metadata, resources
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

DISTRIBUTION = "rcm"
PACKAGED_DIR = "_data"


class PackageDataMissing(RuntimeError):
    """The installation lacks a file the wheel should carry (a broken or hand-made install)."""


def _editable_checkout() -> Path | None:
    try:
        record = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if record is None:
        return None
    direct_url = json.loads(record)
    if not direct_url.get("dir_info", {}).get("editable"):
        return None
    url = urlparse(direct_url["url"])
    return Path(url2pathname(url.path)) if url.scheme == "file" else None


@cache
def data_root() -> Path:
    """The directory holding ``alembic.ini``, ``migrations/`` and ``tenants/`` for this installation."""
    checkout = _editable_checkout()
    if checkout is not None:
        return checkout
    packaged = resources.files(DISTRIBUTION) / PACKAGED_DIR
    # Alembic loads env.py and the revisions from a real directory; pip always unpacks wheels onto disk.
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    raise PackageDataMissing(
        f"the rcm package lacks its {PACKAGED_DIR}/ directory (migrations, tenant schema): reinstall rcm"
    )


def data_path(*parts: str) -> Path:
    """A shipped file or directory, e.g. ``data_path("tenants", "schema.json")``."""
    path = data_root().joinpath(*parts)
    if not path.exists():
        raise PackageDataMissing(f"{'/'.join(parts)} is missing from the rcm installation at {data_root()}")
    return path

"""DTOs of saved views and of the drill-down claims list."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from rcm.dashboard.models import ReportName

# A name people read back in a list: printable, no markup characters, at most 80 characters.
ViewName = Annotated[str, msgspec.Meta(min_length=1, max_length=80, pattern=r"^[^\x00-\x1f\x7f<>]+$")]


class SavedViewWrite(msgspec.Struct, forbid_unknown_fields=True):
    """Save a view under ``name``: a view of the same name of the caller's is replaced."""

    name: ViewName
    report: ReportName
    # Allow-listed settings of the report (grain, group_by, since, until...), each a string as in the
    # page's query string.
    parameters: dict[str, str] = msgspec.field(default_factory=dict)


class SavedView(msgspec.Struct):
    id: uuid.UUID
    name: str
    report: ReportName
    parameters: dict[str, str]
    href: str  # the page that reopens the view, its parameters in the query string
    created_at: datetime
    updated_at: datetime

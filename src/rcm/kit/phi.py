"""PHI never shows up by accident: objects that carry it print as ``***``."""

from __future__ import annotations


class MaskedRepr:
    """Mixin for DTOs holding PHI: ``repr`` and ``str`` show the type and id only (logs, tracebacks)."""

    __slots__ = ()

    def __repr__(self) -> str:
        row_id = getattr(self, "id", None)
        return f"{type(self).__name__}(id={row_id}, ***)" if row_id else f"{type(self).__name__}(***)"

    __str__ = __repr__

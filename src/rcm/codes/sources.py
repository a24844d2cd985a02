"""Which importer reads what: the kinds ``rcm codes load`` takes, the files that ship, release dates."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path

from rcm.codes.importers import hcpcs, icd10cm, mue, ncci, operator, sex_age
from rcm.codes.importers.base import ParsedRelease
from rcm.codes.models import CodeSet

# pyx12's lists carry no dates: the values it ships are taken as valid from this day (a date of service
# before it is still judged, with a warning naming the release).
PYX12_FROM = date(2024, 1, 1)


class SourceKind(enum.StrEnum):
    ICD10CM = "icd10cm"
    CPT = "cpt"
    HCPCS = "hcpcs"
    POS = "pos"
    RARC = "rarc"
    CARC = "carc"
    NCCI = "ncci"
    MUE = "mue"
    SEX_AGE = "sex-age"


class SourceError(ValueError):
    """What the operator must add (an option) or remove (a file) for a load to be understood."""


@dataclass(frozen=True, slots=True)
class _Options:
    label: str | None
    effective_from: date | None
    effective_through: date | None


_Reader = Callable[[Sequence[Path], _Options], list[ParsedRelease]]


def shipped(*parts: str) -> Path:
    """A code-set file that ships inside this package (``rcm/codes/fixtures``, with its provenance notes)."""
    return Path(str(resources.files("rcm.codes").joinpath("fixtures", *parts)))


def _one(kind: SourceKind, files: Sequence[Path], *, optional: bool = False) -> Path | None:
    if len(files) > 1:
        raise SourceError(f"{kind.value} takes one file, {len(files)} were given")
    if not files and not optional:
        raise SourceError(f"{kind.value} needs the operator's file")
    return files[0] if files else None


def _need(value: date | None, kind: SourceKind) -> date:
    if value is None:
        raise SourceError(f"{kind.value}: give --effective-from (the first date of service the file covers)")
    return value


def _icd10cm(files: Sequence[Path], o: _Options) -> list[ParsedRelease]:
    path = _one(SourceKind.ICD10CM, files, optional=True)
    if path is None:
        return [icd10cm.from_package()]
    guessed = icd10cm.guess_window(path)
    start = o.effective_from or (guessed[1] if guessed else None)
    through = o.effective_through or (guessed[2] if guessed else None)
    return [
        icd10cm.from_order_file(
            path,
            label=o.label or (guessed[0] if guessed else path.stem),
            effective_from=_need(start, SourceKind.ICD10CM),
            effective_through=through,
        )
    ]


def _operator(kind: SourceKind) -> _Reader:
    def read(files: Sequence[Path], o: _Options) -> list[ParsedRelease]:
        path = _one(kind, files)
        assert path is not None
        return [
            operator.from_operator_file(
                path,
                CodeSet(kind.value),
                label=o.label or path.stem,
                effective_from=_need(o.effective_from, kind),
                effective_through=o.effective_through,
            )
        ]

    return read


def _hcpcs(files: Sequence[Path], o: _Options) -> list[ParsedRelease]:
    path = _one(SourceKind.HCPCS, files, optional=True)
    if path is None:
        return hcpcs.from_csv(shipped("hcpcs", "hcpcs_level_2.csv"))
    if path.suffix.lower() == ".csv":
        return hcpcs.from_csv(
            path, label=o.label or path.stem, effective_from=_need(o.effective_from, SourceKind.HCPCS)
        )
    window = hcpcs.guess_anweb_window(path)
    return hcpcs.from_anweb(
        path,
        label=o.label or (window[0] if window else path.stem),
        effective_from=_need(o.effective_from or (window[1] if window else None), SourceKind.HCPCS),
    )


def _pyx12(kind: SourceKind) -> _Reader:
    def read(files: Sequence[Path], o: _Options) -> list[ParsedRelease]:
        path = _one(kind, files, optional=True)
        if path is None:
            # What ships: pyx12's values, with CMS's place-of-service names (RARC: values only).
            path = shipped("pos", "pos_descriptions.csv") if kind is SourceKind.POS else None
            start = o.effective_from or PYX12_FROM
        else:
            start = _need(o.effective_from, kind)
        return [
            operator.with_pyx12(
                CodeSet(kind.value),
                path,
                label=o.label or (f"pyx12 values + {path.name}" if path else "pyx12 values"),
                effective_from=start,
                effective_through=o.effective_through,
            )
        ]

    return read


def _ncci(files: Sequence[Path], o: _Options) -> list[ParsedRelease]:
    if not files:
        raise SourceError("ncci needs the quarter's PTP files (ccipra-v<NNN>r0-f<n>.TXT)")
    out = []
    for path in files:
        quarter = ncci.guess_quarter(path)
        out.append(
            ncci.from_file(
                path,
                label=o.label or (quarter[0] if quarter else path.stem),
                effective_from=_need(o.effective_from or (quarter[1] if quarter else None), SourceKind.NCCI),
            )
        )
    return out


def _mue(files: Sequence[Path], o: _Options) -> list[ParsedRelease]:
    path = _one(SourceKind.MUE, files)
    assert path is not None
    start = _need(o.effective_from or mue.guess_effective(path), SourceKind.MUE)
    return [mue.from_file(path, label=o.label or f"practitioner {start.isoformat()}", effective_from=start)]


def _sex_age(files: Sequence[Path], o: _Options) -> list[ParsedRelease]:
    path = _one(SourceKind.SEX_AGE, files)
    assert path is not None
    return [
        sex_age.from_file(
            path, label=o.label or path.stem, effective_from=_need(o.effective_from, SourceKind.SEX_AGE)
        )
    ]


_READERS: dict[SourceKind, _Reader] = {
    SourceKind.ICD10CM: _icd10cm,
    SourceKind.CPT: _operator(SourceKind.CPT),
    SourceKind.CARC: _operator(SourceKind.CARC),
    SourceKind.HCPCS: _hcpcs,
    SourceKind.POS: _pyx12(SourceKind.POS),
    SourceKind.RARC: _pyx12(SourceKind.RARC),
    SourceKind.NCCI: _ncci,
    SourceKind.MUE: _mue,
    SourceKind.SEX_AGE: _sex_age,
}


def releases_for(
    kind: SourceKind,
    files: Sequence[Path],
    *,
    label: str | None = None,
    effective_from: date | None = None,
    effective_through: date | None = None,
) -> list[ParsedRelease]:
    """The releases the given files (or, without files, what ships) hold, in the order given."""
    return _READERS[kind](files, _Options(label, effective_from, effective_through))

"""CSV and XLSX exports of the money reports: one table per report, amounts in dollars with two decimals
(exact: integer cents formatted, never floats in CSV; XLSX cells are numbers with a money format)."""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import Sequence
from decimal import Decimal

import xlsxwriter

from rcm.reporting.schemas import ArAgingReport, CashFlowFigures, CashFlowReport

Cell = str | int | Decimal | None


class ExportFormat(enum.StrEnum):
    JSON = "json"
    CSV = "csv"
    XLSX = "xlsx"


MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

_FIGURES = (
    ("charges", "charges_cents"),
    ("payments", "payments_cents"),
    ("patient_payments", "patient_payments_cents"),
    ("refunds", "refunds_cents"),
    ("adjustments", "adjustments_cents"),
    ("interest", "interest_cents"),
    ("provider_adjustments", "provider_adjustments_cents"),
    ("unapplied", "unapplied_cents"),
)


def dollars(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


class Table:
    """A header and rows; columns whose header ends in ``_usd`` hold money."""

    def __init__(self, header: Sequence[str], rows: list[list[Cell]]) -> None:
        self.header = list(header)
        self.rows = rows


def cash_flow_table(report: CashFlowReport) -> Table:
    groups = sorted({g for r in report.rows for g in r.figures.adjustments_by_group})
    header = [
        "period_start",
        "period_end",
        "group",
        "closed",
        *(f"{name}_usd" for name, _ in _FIGURES),
        *(f"adjustments_{g or 'none'}_usd" for g in groups),
        "entries",
    ]

    def money(f: CashFlowFigures) -> list[Cell]:
        return [
            *(dollars(getattr(f, field)) for _, field in _FIGURES),
            *(dollars(f.adjustments_by_group.get(g, 0)) for g in groups),
        ]

    rows: list[list[Cell]] = [
        [
            r.period_start.isoformat(),
            r.period_end.isoformat(),
            r.group or "",
            "yes" if r.closed else "no",
            *money(r.figures),
            r.figures.entries,
        ]
        for r in report.rows
    ]
    # The whole period and the previous one, after the periods: group "total" and "previous_period".
    rows.append(
        [
            report.date_from.isoformat(),
            report.date_to.isoformat(),
            "total",
            "",
            *money(report.total),
            report.total.entries,
        ]
    )
    rows.append(
        [
            report.previous_from.isoformat(),
            report.previous_to.isoformat(),
            "previous_period",
            "",
            *money(report.previous_total),
            report.previous_total.entries,
        ]
    )
    return Table(header, rows)


def ar_aging_table(report: ArAgingReport) -> Table:
    names = [b.bucket for b in report.totals]
    header = ["payer", *(f"{n}_usd" for n in names), "balance_usd", "claims", "previous_balance_usd"]
    rows: list[list[Cell]] = [
        [
            r.payer_id,
            *(dollars(b.balance_cents) for b in r.buckets),
            dollars(r.balance_cents),
            r.claims,
            dollars(r.previous_balance_cents) if r.previous_balance_cents is not None else None,
        ]
        for r in report.rows
    ]
    rows.append(
        [
            "total",
            *(dollars(b.balance_cents) for b in report.totals),
            dollars(report.balance_cents),
            sum(b.claims for b in report.totals),
            dollars(report.previous_balance_cents) if report.previous_balance_cents is not None else None,
        ]
    )
    return Table(header, rows)


def to_csv(table: Table) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.header)
    for row in table.rows:
        writer.writerow(["" if v is None else _csv_safe(v) for v in row])
    return out.getvalue().encode()


def _csv_safe(value: Cell) -> str:
    text = str(value)
    # A cell starting with = + - @ is a formula to a spreadsheet (CSV injection): quote it as text.
    if isinstance(value, str) and text[:1] in ("=", "+", "-", "@"):
        return "'" + text
    return text


def to_xlsx(table: Table, sheet: str) -> bytes:
    out = io.BytesIO()
    workbook = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False})
    worksheet = workbook.add_worksheet(sheet)
    bold = workbook.add_format({"bold": True})
    money = workbook.add_format({"num_format": "#,##0.00"})
    worksheet.write_row(0, 0, table.header, bold)
    for r, row in enumerate(table.rows, start=1):
        for c, value in enumerate(row):
            if isinstance(value, Decimal):
                # The Decimal itself: xlsxwriter writes it as its exact decimal text (no binary float).
                worksheet.write(r, c, value, money)
            elif isinstance(value, int):
                worksheet.write_number(r, c, value)
            elif value is not None:
                worksheet.write_string(r, c, value)
    worksheet.freeze_panes(1, 0)
    workbook.close()
    return out.getvalue()


def render(table: Table, fmt: ExportFormat, sheet: str) -> bytes:
    return to_csv(table) if fmt is ExportFormat.CSV else to_xlsx(table, sheet)

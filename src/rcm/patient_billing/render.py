"""A patient statement as data (JSON, CSV) and as a PDF (fpdf2), without a database.

The statement carries the practice's branding (name, colour), the patient's name and mailing address (it is
mailed), one block per visit with its lines, what the payers paid and adjusted and what the patient owes,
the balance by age, any payment plan installment due, and how to pay. It is PHI: the caller stores it as an
encrypted blob under its id, never under a name."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date

import msgspec
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from rcm.patient_billing import schemas


class Line(msgspec.Struct, frozen=True, kw_only=True):
    procedure_code: str
    modifiers: list[str]
    units: int
    charge_cents: int


class Visit(msgspec.Struct, frozen=True, kw_only=True):
    service_date: date
    claim_id: uuid.UUID
    provider: str | None  # who saw the patient
    lines: list[Line]
    charges_cents: int
    insurance_paid_cents: int
    adjustments_cents: int
    patient_paid_cents: int
    written_off_cents: int
    balance_cents: int
    insurance_pending: bool


class Party(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    address: list[str]


class HowToPay(msgspec.Struct, frozen=True, kw_only=True):
    url: str | None = None
    phone: str | None = None
    text: str | None = None


class InstallmentDue(msgspec.Struct, frozen=True, kw_only=True):
    due_on: date
    amount_cents: int


class StatementDoc(msgspec.Struct, frozen=True, kw_only=True):
    """The statement's data file (JSON); the CSV and the PDF are made from it."""

    statement_id: uuid.UUID
    statement_date: date
    account: str  # the patient's account number as printed: an opaque id, never the MRN
    practice: Party
    brand_color: str
    patient: Party
    amount_due_cents: int
    balance_cents: int
    pending_insurance_cents: int
    aging: schemas.BalanceAging
    visits: list[Visit]
    how_to_pay: HowToPay
    installment_due: InstallmentDue | None = None


def money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{part:02d}"


def to_json(doc: StatementDoc) -> bytes:
    return msgspec.json.encode(doc)


CSV_COLUMNS = (
    "statement_id",
    "statement_date",
    "service_date",
    "claim_id",
    "provider",
    "procedure_code",
    "modifiers",
    "units",
    "charge_cents",
    "visit_insurance_paid_cents",
    "visit_adjustments_cents",
    "visit_patient_paid_cents",
    "visit_written_off_cents",
    "visit_balance_cents",
    "insurance_pending",
)


def to_csv(doc: StatementDoc) -> bytes:
    """One row per visit line; the visit's money repeats on each of its lines."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for visit in doc.visits:
        for line in visit.lines or [Line(procedure_code="", modifiers=[], units=0, charge_cents=0)]:
            writer.writerow(
                (
                    doc.statement_id,
                    doc.statement_date.isoformat(),
                    visit.service_date.isoformat(),
                    visit.claim_id,
                    visit.provider or "",
                    line.procedure_code,
                    " ".join(line.modifiers),
                    line.units,
                    line.charge_cents,
                    visit.insurance_paid_cents,
                    visit.adjustments_cents,
                    visit.patient_paid_cents,
                    visit.written_off_cents,
                    visit.balance_cents,
                    "true" if visit.insurance_pending else "false",
                )
            )
    return out.getvalue().encode()


def _latin1(text: str) -> str:
    # The PDF's core fonts (Helvetica) cover Latin-1; anything beyond is shown as "?" rather than failing.
    return text.encode("latin-1", "replace").decode("latin-1")


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


_AGING = (
    ("Current", "current"),
    ("31-60 days", "days_31_60"),
    ("61-90 days", "days_61_90"),
    ("91-120 days", "days_91_120"),
    ("Over 120 days", "over_120"),
)


class _Page:
    """The statement's one PDF document, drawn section by section."""

    def __init__(self, doc: StatementDoc) -> None:
        self.doc = doc
        self.pdf = pdf = FPDF(format="Letter", unit="pt")
        pdf.set_auto_page_break(auto=True, margin=54)
        pdf.set_margins(54, 54, 54)
        pdf.add_page()
        pdf.set_title("Patient statement")
        self.width = pdf.w - pdf.l_margin - pdf.r_margin
        self.brand = _rgb(doc.brand_color)

    def text(self, value: str, size: float = 10, *, bold: bool = False) -> None:
        self.pdf.set_font("Helvetica", "B" if bold else "", size)
        self.pdf.cell(self.width, size + 4, _latin1(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def header(self) -> None:
        pdf, doc = self.pdf, self.doc
        # A band in the practice's colour, then its name in that colour.
        pdf.set_fill_color(*self.brand)
        pdf.rect(0, 0, pdf.w, 36, style="F")
        pdf.set_text_color(*self.brand)
        self.text(doc.practice.name, 18, bold=True)
        pdf.set_text_color(0, 0, 0)
        for line in doc.practice.address:
            self.text(line, 9)
        pdf.ln(10)
        self.text("PATIENT STATEMENT", 12, bold=True)
        self.text(f"Statement date: {doc.statement_date.isoformat()}    Account: {doc.account}", 9)
        pdf.ln(6)
        self.text(doc.patient.name, 11, bold=True)
        for line in doc.patient.address:
            self.text(line, 10)
        pdf.ln(10)

    def amount_due(self) -> None:
        pdf, doc = self.pdf, self.doc
        pdf.set_fill_color(*self.brand)
        pdf.set_text_color(255, 255, 255)
        pdf.set_font("Helvetica", "B", 13)
        pdf.cell(
            self.width,
            24,
            _latin1(f"  Amount due: {money(doc.amount_due_cents)}"),
            fill=True,
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        pdf.set_text_color(0, 0, 0)
        if doc.installment_due is not None:
            due = doc.installment_due
            self.text(
                f"Payment plan installment due {due.due_on.isoformat()}: {money(due.amount_cents)}",
                10,
                bold=True,
            )
        if doc.pending_insurance_cents:
            self.text(f"Awaiting insurance (not due yet): {money(doc.pending_insurance_cents)}", 9)
        pdf.ln(8)

    def visits(self) -> None:
        pdf = self.pdf
        columns = (
            ("Date", 62),
            ("Description", 170),
            ("Charges", 62),
            ("Insurance", 62),
            ("Adjusted", 62),
            ("You paid", 48),
            ("You owe", 38),
        )
        scale = self.width / sum(w for _, w in columns)
        pdf.set_font("Helvetica", "B", 8)
        pdf.set_fill_color(235, 235, 235)
        for label, w in columns:
            pdf.cell(w * scale, 14, label, border="B", fill=True)
        pdf.ln(14)
        pdf.set_font("Helvetica", "", 8)
        for visit in self.doc.visits:
            codes = ", ".join(
                line.procedure_code + "".join(f"-{m}" for m in line.modifiers) for line in visit.lines
            )
            note = " (awaiting insurance)" if visit.insurance_pending else ""
            who = f"{visit.provider}: " if visit.provider else "Visit: "
            cells = (
                visit.service_date.isoformat(),
                f"{who}{codes}{note}"[:60],
                money(visit.charges_cents),
                money(-visit.insurance_paid_cents),
                money(-visit.adjustments_cents - visit.written_off_cents),
                money(-visit.patient_paid_cents),
                money(visit.balance_cents),
            )
            for (_, w), value in zip(columns, cells, strict=True):
                pdf.cell(w * scale, 14, _latin1(value), border="B")
            pdf.ln(14)
        pdf.ln(10)

    def aging(self) -> None:
        pdf = self.pdf
        self.text("Your balance by age", 10, bold=True)
        pdf.set_font("Helvetica", "", 9)
        for label, _ in _AGING:
            pdf.cell(self.width / 5, 14, label, border=1, align="C")
        pdf.ln(14)
        for _, field in _AGING:
            pdf.cell(self.width / 5, 14, money(getattr(self.doc.aging, field)), border=1, align="C")
        pdf.ln(22)

    def how_to_pay(self) -> None:
        doc, pay = self.doc, self.doc.how_to_pay
        self.text("How to pay", 10, bold=True)
        if pay.url:
            self.text(f"Online: {pay.url}", 9)
        if pay.phone:
            self.text(f"By phone: ({pay.phone[:3]}) {pay.phone[3:6]}-{pay.phone[6:]}", 9)
        if pay.text:
            self.pdf.set_font("Helvetica", "", 9)
            self.pdf.multi_cell(self.width, 12, _latin1(pay.text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if not (pay.url or pay.phone or pay.text):
            self.text(f"Contact {doc.practice.name} to pay your balance.", 9)
        self.text(f"Please include your account number ({doc.account}) with your payment.", 8)


def to_pdf(doc: StatementDoc) -> bytes:
    page = _Page(doc)
    page.header()
    page.amount_due()
    page.visits()
    page.aging()
    page.how_to_pay()
    return bytes(page.pdf.output())

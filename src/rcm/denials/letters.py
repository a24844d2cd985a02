"""Appeal letters: a practice-editable template (Jinja text, rendered in a sandbox) filled with the claim, its
denials and the biller's argument, laid out as a PDF (fpdf2).

The template is the practice's text, so it is treated as untrusted: Jinja's ``SandboxedEnvironment``
refuses attribute access to internals (``__class__``, ``mro``, ``__globals__``...) and unsafe callables;
here, on top, the power operator and repeating text or lists with ``*`` are refused (a cheap way to
exhaust memory), undefined names are errors (``StrictUndefined``: a typo does not print as blank), and the
rendered text is capped. Any error is a 422 naming the template's line (``/body``), never a 500. The
context holds plain values (strings, numbers, lists, dicts), nothing with methods worth reaching.

The PDF uses fpdf2's core Helvetica font, which covers Latin-1: any other character is replaced by ``?``
(typographic quotes and dashes are mapped to their plain forms first). ``**bold**`` and ``__italic__``
in the template are honoured (fpdf2's markdown subset). The document carries no PHI in its metadata.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from typing import Any

from fpdf import FPDF
from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from rcm.kit.errors import FieldError, InvalidInput

DEFAULT_TEMPLATE_NAME = "default"
MAX_LETTER_CHARS = 60_000
_TEMPLATE_FILE = "<template>"

DEFAULT_TEMPLATE = """\
**{{ practice.name }}**
NPI {{ practice.npi }}

{{ today }}

{{ payer.name }}
Appeals / Reconsideration

**Re: Request for reconsideration of a denied claim**
Patient: {{ patient.name }}    Date of birth: {{ patient.birth_date }}
Member ID: {{ patient.member_id }}
Payer claim number: {{ claim.payer_claim_control_number }}
Our reference: {{ claim.patient_control_number }}
Date of service: {{ claim.service_date }}    Billed: {{ claim.total_charge }}

To whom it may concern:

We ask you to reconsider the denial of the services below.

{% for d in denials -%}
- {% if d.line_number %}Line {{ d.line_number }} ({{ d.procedure_code }}){% else %}Claim{% endif %}: \
{{ d.adjustments | join(", ") or "no reason code" }}\
{% if d.rarcs %}, remarks {{ d.rarcs | join(", ") }}{% endif %} ({{ d.category }}), {{ d.denied }} denied
{% endfor %}
{{ argument }}

Please reprocess the claim and issue payment. This appeal is filed before the deadline of {{ deadline }}.

Sincerely,

{{ practice.name }}, billing office
"""

_PLAIN = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"}
)


class _Sandbox(SandboxedEnvironment):
    """The stock sandbox, with ``*`` on text or lists and ``**`` refused as well."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            raise SecurityError("the power operator is not allowed")
        if isinstance(left, str | list | tuple) or isinstance(right, str | list | tuple):
            raise SecurityError("repeating text or lists with * is not allowed")
        return super().call_binop(context, operator, left, right)


_ENV = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def _line_of(exc: BaseException) -> int | None:
    """The template line an error happened on (Jinja maps its frames back to the template's lines)."""
    if isinstance(exc, TemplateSyntaxError):
        return exc.lineno
    lines = [
        frame.lineno for frame in traceback.extract_tb(exc.__traceback__) if frame.filename == _TEMPLATE_FILE
    ]
    return lines[-1] if lines else None


def _refused(exc: BaseException) -> InvalidInput:
    line = _line_of(exc)
    # Jinja's own messages name template constructs and types, never values; anything else by type only.
    what = exc.message if isinstance(exc, TemplateError) and exc.message else type(exc).__name__
    where = f"line {line}: " if line is not None else ""
    return InvalidInput(
        "The appeal template cannot be rendered.", errors=[FieldError("/body", f"{where}{what}")]
    )


def render_text(body: str, context: Mapping[str, Any]) -> str:
    """The letter's text, or 422 naming the line of the template that failed."""
    try:
        template = _ENV.from_string(body)
        template.filename = _TEMPLATE_FILE
        text = template.render(**context)
    except Exception as exc:
        raise _refused(exc) from None
    if len(text) > MAX_LETTER_CHARS:
        raise InvalidInput(
            "The appeal letter is too long.",
            errors=[FieldError("/body", f"renders more than {MAX_LETTER_CHARS} characters")],
        )
    return text


def check_template(body: str) -> None:
    """A template a practice saves must compile and render against a sample claim (422 otherwise)."""
    try:
        compiled = _ENV.parse(body)
        del compiled
    except TemplateSyntaxError as exc:
        raise _refused(exc) from None
    render_text(body, SAMPLE_CONTEXT)


def _latin1(text: str) -> str:
    return text.translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")


def render_pdf(text: str) -> bytes:
    """The letter laid out on US Letter pages."""
    pdf = FPDF(format="Letter")
    pdf.set_creator("RCM")
    pdf.set_title("Appeal letter")
    pdf.set_margins(25, 25, 25)
    pdf.set_auto_page_break(auto=True, margin=25)
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 5.5, _latin1(text), markdown=True, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


SAMPLE_CONTEXT: dict[str, Any] = {
    "practice": {"name": "Sample Practice", "npi": "1234567893"},
    "payer": {"id": "PAYER", "name": "Sample Payer"},
    "patient": {"name": "SAMPLE PATIENT", "birth_date": "1970-01-01", "member_id": "MEMBER"},
    "claim": {
        "patient_control_number": "PCN",
        "payer_claim_control_number": "ICN",
        "service_date": "2026-01-01",
        "total_charge": "$125.00",
        "lines": [{"line_number": 1, "procedure_code": "99213", "modifiers": [], "charge": "$125.00"}],
    },
    "denials": [
        {
            "line_number": 1,
            "procedure_code": "99213",
            "group_code": "CO",
            "carc": "50",
            "adjustments": ["CO-50"],
            "rarcs": ["N115"],
            "category": "medical necessity",
            "denied": "$125.00",
        }
    ],
    "argument": "Sample argument.",
    "today": "2026-01-31",
    "deadline": "2026-05-01",
}

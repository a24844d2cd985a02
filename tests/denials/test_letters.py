"""Appeal letters: the practice's template rendered in a sandbox (escape attempts and errors are 422s that
name the line), laid out as a PDF whose first page renders and carries the text."""

from __future__ import annotations

import copy

import pypdfium2 as pdfium
import pytest

from rcm.denials import letters
from rcm.kit.errors import InvalidInput


def _pdf_text(data: bytes) -> str:
    document = pdfium.PdfDocument(data)
    page = document[0]
    text = page.get_textpage().get_text_range()
    image = page.render(scale=1).to_pil()
    assert image.size[0] > 500  # US Letter at 72 dpi: 612 x 792
    assert image.size[1] > 600
    assert image.convert("L").getextrema()[0] < 128  # something dark (text) is drawn
    return str(text)


def test_the_default_letter_carries_the_claim_the_reasons_and_the_argument() -> None:
    context = copy.deepcopy(letters.SAMPLE_CONTEXT)
    context["argument"] = "The visit was medically necessary: see the enclosed notes."
    text = letters.render_text(letters.DEFAULT_TEMPLATE, context)
    pdf = letters.render_pdf(text)
    assert pdf.startswith(b"%PDF-")
    extracted = " ".join(_pdf_text(pdf).split())
    for expected in (
        "Sample Practice",
        "SAMPLE PATIENT",
        "Payer claim number: ICN",
        "Line 1 (99213): CO-50, remarks N115 (medical necessity), $125.00 denied",
        "The visit was medically necessary",
        "2026-05-01",
    ):
        assert expected in extracted


def test_text_beyond_latin_1_is_replaced_not_refused() -> None:
    pdf = letters.render_pdf("Dr \u201cO\u2019Neil\u201d \u2014 \u6f22\u5b57 caf\u00e9")
    assert 'Dr "O\'Neil" - ?? caf\u00e9' in _pdf_text(pdf)


@pytest.mark.parametrize(
    ("body", "line", "what"),
    [
        ("Hello\n{{ claim.__class__.__mro__ }}", 2, "unsafe"),
        ("{{ ''.__class__.__base__.__subclasses__() }}", 1, "unsafe"),
        ("a\nb\n{{ cycler.__init__.__globals__ }}", 3, "unsafe"),
        ("{{ self.__init__.__globals__ }}", 1, "unsafe"),
        ("{{ 'x' * 100000000 }}", 1, "not allowed"),
        ("{{ 9 ** 999999 }}", 1, "not allowed"),
        ("{% for i in range(1000000) %}x{% endfor %}", 1, "OverflowError"),  # the sandbox caps range()
        ("{{ nope }}", 1, "'nope' is undefined"),
        ("line one\n{% if %}", 2, "Expected an expression"),
        ("{{ '{0.__class__}'.format(claim) }}", 1, "unsafe"),
    ],
)
def test_escape_attempts_and_errors_are_refused_naming_the_line(body: str, line: int, what: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        letters.check_template(body)
    (error,) = refused.value.errors
    assert error.pointer == "/body"
    assert error.detail.startswith(f"line {line}: ")
    assert what.lower() in error.detail.lower()


def test_a_practice_template_renders_with_the_sample() -> None:
    body = "Dear {{ payer.name }},\n{% for d in denials %}{{ d.carc }} {% endfor %}"
    letters.check_template(body)  # accepted: no InvalidInput
    assert letters.render_text(body, letters.SAMPLE_CONTEXT) == "Dear Sample Payer,\n50 "

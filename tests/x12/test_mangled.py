"""The 835, 999, 277CA and 277 readers and checks on mangled input: an X12Error naming where, never a
crash."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rcm.x12 import transactions
from rcm.x12.document import describe
from tests.x12 import remittances as rem
from tests.x12 import test_acknowledgment as ack
from tests.x12 import test_claim_status as status
from tests.x12 import test_remittance as rem_tests
from tests.x12.outcomes import findings_of, read_or_refused

SAMPLES = {
    "835": rem.write(rem_tests.SHAPES["several claims, several lines, PLB"]),
    "999": ack._write(
        ack.SHAPES["partially accepted"], ack.SHAPES["rejected with segment and element errors"]
    ),
    "277CA": status._write_277ca(status.ACKS["mixed, several claims of a patient"]),
    "277": status._write_277(status.RESPONSE),
}


@pytest.mark.parametrize("kind", SAMPLES)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_mangled_input_raises_only_x12_error(kind: str, data: st.DataObject) -> None:
    text = list(SAMPLES[kind])
    for _ in range(data.draw(st.integers(1, 6))):
        action = data.draw(st.sampled_from(["replace", "delete", "insert"]))
        position = data.draw(st.integers(0, len(text) - 1))
        character = data.draw(st.sampled_from(list("*~:^0123456789ABCEHKLMNPQRSTV -.\n")))
        if action == "replace":
            text[position] = character
        elif action == "delete":
            del text[position]
        else:
            text.insert(position, character)
    mangled = "".join(text)
    described = read_or_refused(describe, mangled)
    findings = findings_of(mangled)  # findings, never an exception
    assert all(f.message for f in findings)
    if described is not None:
        assert "interchanges" in described


def test_samples_read_as_their_kind() -> None:
    for kind, content in SAMPLES.items():
        assert {transaction.kind for transaction in transactions(content)} == {kind}

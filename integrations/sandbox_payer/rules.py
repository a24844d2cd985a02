"""The sandbox payer's adjudication rules: an ordered list, the first rule matching a claim decides.

A rules file ``rules.yaml`` in the state directory replaces the defaults below (it is read on every
submission, so a test or a demo can change the payer's mind between two files). Its shape::

    claims:
      - when: {pcn_last_digit: ["0"]}          # all conditions given must hold; none given: every claim
        outcome: reject_277ca                  # pay, partial, deny, reject_277ca, reject_999
        message: PATIENT NOT ON FILE
      - when: {procedure: ["97110"], payer_id: ["60054"], charge_at_least: 100000, charge_below: 500000}
        outcome: deny
        carc: "50"
        rarc: N115
      - when: {pcn_last_digit: ["3", "5"]}
        outcome: partial                       # CO-45 contractual, then the patient's share (PR-1/2/3)
        contractual_percent: 20
        patient_reason: "2"
        patient_percent: 20
      - when: {pcn_last_digit: ["8"]}
        outcome: pay
        delay_fetches: 2                       # the 835 is withheld until the 2nd fetch after submission
    eligibility:
      inactive_member_prefixes: [INACT, TERM]
      unknown_member_prefixes: [NOTFOUND]      # answered with AAA*N**75*C (subscriber not found)
      copay: {"98": 2500, "86": 15000}         # cents by service type; others get default_copay
      default_copay: 3000
      deductible: 150000
      coinsurance: "0.2"

Amounts are integer cents. Matching is deterministic: the same claim under the same rules always gets the
same outcome, so a test or a demo knows what is coming.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import msgspec
import msgspec.yaml

from rcm.x12.claims import Claim, SubscriberLoop

RULES_FILE = "rules.yaml"


class Outcome(StrEnum):
    PAY = "pay"
    PARTIAL = "partial"
    DENY = "deny"
    REJECT_277CA = "reject_277ca"
    REJECT_999 = "reject_999"


class When(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    procedure: list[str] | None = None  # any line's procedure code is one of these
    payer_id: list[str] | None = None  # 2010BB NM109
    member_prefix: list[str] | None = None  # the subscriber's member id starts with one of these
    pcn_last_digit: list[str] | None = None  # CLM01's last character
    charge_at_least: int | None = None  # CLM02, cents
    charge_below: int | None = None

    def matches(self, loop: SubscriberLoop, claim: Claim) -> bool:
        procedures = {line.procedure for line in claim.lines if line.procedure}
        checks = (
            self.procedure is None or bool(procedures.intersection(self.procedure)),
            self.payer_id is None or loop.payer.payer_id in self.payer_id,
            self.member_prefix is None
            or any(loop.subscriber.member_id.startswith(prefix) for prefix in self.member_prefix),
            self.pcn_last_digit is None or claim.patient_control_number[-1:] in self.pcn_last_digit,
            self.charge_at_least is None or claim.total_charge >= self.charge_at_least,
            self.charge_below is None or claim.total_charge < self.charge_below,
        )
        return all(checks)


class Rule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    outcome: Outcome
    when: When = When()
    # deny: the CAS group and CARC of the whole charge; partial: the RARC beside the patient's share.
    group: str = "CO"
    carc: str = "16"
    rarc: str | None = None
    # partial: CO-45 takes contractual_percent of each line's charge; of what remains (the allowed amount)
    # the patient owes patient_percent under PR-<patient_reason> (1 deductible, 2 coinsurance, 3 copay).
    contractual_percent: int = 20
    patient_reason: str = "2"
    patient_percent: int = 20
    # reject_277ca: the STC status code (category A7) and free text; reject_999: nothing more to say.
    status_code: str = "21"
    message: str | None = None
    # pay, partial, deny: the 835 comes out with the fetch this many fetches after the submission (0: the
    # same fetch as the 999 and 277CA).
    delay_fetches: int = 0


class Eligibility(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    inactive_member_prefixes: list[str] = msgspec.field(default_factory=lambda: ["INACT", "TERM"])
    unknown_member_prefixes: list[str] = msgspec.field(default_factory=lambda: ["NOTFOUND"])
    plan: str = "SANDBOX PPO"
    copay: dict[str, int] = msgspec.field(default_factory=lambda: {"98": 2500, "86": 15000, "UC": 5000})
    default_copay: int = 3000
    deductible: int = 150000
    coinsurance: str = "0.2"

    def unknown(self, member_id: str | None) -> bool:
        return any((member_id or "").startswith(prefix) for prefix in self.unknown_member_prefixes)

    def active(self, member_id: str | None) -> bool:
        return not any((member_id or "").startswith(prefix) for prefix in self.inactive_member_prefixes)


# The default mix, keyed on the claim's patient control number's last character so a demo batch shows a bit
# of everything: 1, 2, 4, 6 and letters paid, 3 and 5 partially paid, 7 denied, 8 paid two fetches later,
# 9 denied one fetch later, 0 rejected at the 277CA; a claim of $50,000 or more rejected at the 999.
DEFAULT_CLAIM_RULES: tuple[Rule, ...] = (
    Rule(outcome=Outcome.REJECT_999, when=When(charge_at_least=5_000_000)),
    Rule(
        outcome=Outcome.REJECT_277CA,
        when=When(pcn_last_digit=["0"]),
        status_code="562",
        message="SUBSCRIBER NOT FOUND",
    ),
    Rule(outcome=Outcome.PARTIAL, when=When(pcn_last_digit=["3"]), patient_reason="2", rarc="N130"),
    Rule(
        outcome=Outcome.PARTIAL,
        when=When(pcn_last_digit=["5"]),
        patient_reason="1",
        patient_percent=100,
        rarc="N130",
    ),
    Rule(outcome=Outcome.DENY, when=When(pcn_last_digit=["7"]), carc="16", rarc="MA130"),
    Rule(outcome=Outcome.PAY, when=When(pcn_last_digit=["8"]), delay_fetches=2),
    Rule(outcome=Outcome.DENY, when=When(pcn_last_digit=["9"]), carc="50", rarc="N115", delay_fetches=1),
    Rule(outcome=Outcome.PAY),
)


class Rules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    claims: tuple[Rule, ...] = DEFAULT_CLAIM_RULES
    eligibility: Eligibility = Eligibility()

    def decide(self, loop: SubscriberLoop, claim: Claim) -> Rule:
        for rule in self.claims:
            if rule.when.matches(loop, claim):
                return rule
        return Rule(outcome=Outcome.PAY)


def load_rules(directory: Path) -> Rules:
    """The rules file of the state directory, or the defaults when there is none. A malformed file raises
    ``msgspec.ValidationError`` / ``msgspec.DecodeError`` naming the field (the connector reports it)."""
    path = directory / RULES_FILE
    if not path.exists():
        return Rules()
    return msgspec.yaml.decode(path.read_bytes(), type=Rules)


def write_rules(directory: Path, rules: Rules) -> None:
    """Write ``rules`` as the directory's rules file (tests and demos use it to script the payer)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / RULES_FILE).write_bytes(msgspec.yaml.encode(rules))

"""Sandbox payer connector: a payer that adjudicates deterministically and answers with real X12.

Endpoint: ``sandbox:`` (state in ``$RCM_DATA_DIR/sandbox-payer``), ``sandbox:name`` (its subdirectory
``name``) or ``sandbox:/absolute/path``. No credentials. The state directory survives restarts and is shared
by every process opening the same endpoint (``sandbox_payer.store``).

- ``submit``: the 837 is recorded under ``received/`` (one file per call, never de-duplicated, so a count
  proves how often our side sent) and read with our reader; the payer answers with a 999 for each functional
  group, a 277CA for each accepted transaction set and 835s for the claims accepted, by the rules of
  ``rules.yaml`` (``sandbox_payer.rules``: pay, partial with CO-45 and PR, deny with a CARC and RARC, reject
  at the 277CA or the 999, delay the 835 by N fetches). A file our reader refuses gets a 999 rejecting it.
- ``fetch_responses``: the answers in the order they were produced; the cursor is the last sequence number.
  Each fetch counts toward delays. ``acknowledge`` moves the file to ``archive/``.
- ``check_eligibility``: 270 -> 271, active coverage with copay, coinsurance and deductible per service type,
  inactive for member ids the rules list; ``claim_status``: 276 -> 277 from what the payer decided.
"""

from __future__ import annotations

from sandbox_payer.connector import SandboxPayer

__all__ = ["SandboxPayer"]

"""X12 throughput, ours beside pyx12 in the same run.

    .venv/bin/python bench/x12.py [--claims 2000] [--runs 5]

837P: claims written per second by ``rcm.x12.claims837.write_837`` (model to X12 text, envelopes and counts
included), beside pyx12's 5010 validation of the very file written (``x12n_document``, what ``x12valid`` runs:
the reference a clearinghouse front end does per file). The batch is one practice: two billing providers, one
subscriber loop per patient (every third a dependent), claims of one to four lines with modifiers, a referring
and a rendering provider. Runs are interleaved (ours, pyx12, ours...); each figure is the median of the runs
with its range. No database, no network.
"""

from __future__ import annotations

import stdlib_first  # noqa: F401 - first: the standard library's queue before bench/queue.py

# isort: split
import argparse
import gc
import io
import logging
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyx12.params
import pyx12.x12n_document
from tests.x12 import claimdata as data

from rcm.x12.claims import ClaimBatch, SubscriberLoop
from rcm.x12.claims837 import write_837


def make_batch(claims: int) -> ClaimBatch:
    loops: list[list[SubscriberLoop]] = [[], []]
    for number in range(claims):
        lines = tuple(
            data.line(
                2500 + 100 * item,
                ("99213", "36415", "81002", "85025")[item],
                modifiers=(("25",), (), ("QW",), ("59", "GT"))[item],
                diagnosis_pointers=(1, 2) if item == 0 else (1,),
                service_date=data.DAY + timedelta(days=number % 20),
                control_number=f"L{number}-{item}",
            )
            for item in range(1 + number % 4)
        )
        claim = data.claim(
            f"PCN{number:07d}", lines=lines, referring=data.REFERRING, rendering=data.RENDERING
        )
        loop = SubscriberLoop(
            payer=data.AETNA if number % 2 else data.MEDICARE,
            subscriber=data.SUBSCRIBER,
            claims=(claim,),
            patient=data.CHILD if number % 3 == 0 else None,
        )
        loops[number % 2].append(loop)
    return data.batch(
        data.billing_provider(tuple(loops[0])),
        data.billing_provider(tuple(loops[1]), stem="176543210"),
    )


def pyx12_validate(content: str) -> bool:
    param = pyx12.params.params()
    return bool(
        pyx12.x12n_document.x12n_document(
            param=param, src_file=io.StringIO(content), fd_997=None, fd_html=None
        )
    )


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f}/s (range {min(values):,.0f}-{max(values):,.0f})"


def bench_837p(claims: int, runs: int) -> None:
    batch = make_batch(claims)
    content = write_837(batch)
    if not pyx12_validate(content):
        raise SystemExit("pyx12 finds errors in the benchmark batch: fix the writer first")
    ours: list[float] = []
    reference: list[float] = []
    for _ in range(runs):
        gc.collect()  # each phase starts with the same clean heap
        started = time.perf_counter()
        write_837(batch)
        ours.append(claims / (time.perf_counter() - started))
        gc.collect()
        started = time.perf_counter()
        pyx12_validate(content)
        reference.append(claims / (time.perf_counter() - started))
    print(f"837P, {claims:,} claims, {len(content) / 1e6:.2f} MB, {runs} runs, load {os.getloadavg()[0]:.2f}")
    print(f"  ours  write_837 (model -> X12):        {_median(ours)} claims")
    print(f"  pyx12 x12n_document (validate file):   {_median(reference)} claims")
    print(f"  ratio: {statistics.median(ours) / statistics.median(reference):.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    logging.getLogger("pyx12").setLevel(logging.CRITICAL)
    bench_837p(args.claims, args.runs)


if __name__ == "__main__":
    main()

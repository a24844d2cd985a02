"""Reading a ~10 MB FHIR patient bundle: time and peak Python memory of the streamed reader (ijson, one
entry validated at a time with fhir.resources R4B, facts kept) beside materialising the whole Bundle model
(``Bundle.model_validate_json``), which the intake avoids.

    .venv/bin/python bench/fhir_bundle.py [--megabytes 10]

The bundle is Synthea-shaped (tests/fhir/bundles.py): one patient, encounters with conditions,
observations, procedures, base64 notes, claims and explanations of benefit. No database, no network.
"""

from __future__ import annotations

import stdlib_first  # noqa: F401 - first: the standard library's queue before bench/queue.py

# isort: split
import argparse
import gc
import json
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fhir.resources.R4B.bundle import Bundle
from tests.fhir.bundles import synthea_bundle

from rcm.fhir.reader import read_bundle


def make_bundle(megabytes: float) -> bytes:
    encounters = 10
    while True:
        body = json.dumps(synthea_bundle(encounters)).encode()
        if len(body) >= megabytes * 1_000_000:
            return body
        encounters = int(encounters * megabytes * 1_000_000 / len(body)) + 1


def measure(label: str, work: Any, body: bytes) -> tuple[float, float]:
    gc.collect()
    started = time.perf_counter()
    work(body)
    seconds = time.perf_counter() - started
    gc.collect()
    tracemalloc.start()
    work(body)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{label:<44} {seconds:7.2f} s   peak {peak / 1e6:7.1f} MB ({peak / len(body):.1f}x the body)")
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=float, default=10.0)
    args = parser.parse_args()
    body = make_bundle(args.megabytes)
    read_bundle(
        json.dumps(synthea_bundle(1)).encode()
    )  # imports the R4B models once, as the app's start does
    entries = len(json.loads(body)["entry"])
    print(f"bundle: {len(body) / 1e6:.1f} MB, {entries} entries")
    measure("streamed reader (ours: ijson + R4B per entry)", read_bundle, body)
    measure("whole Bundle model (Bundle.model_validate_json)", Bundle.model_validate_json, body)


if __name__ == "__main__":
    main()

"""X12: 837P claims written per second beside pyx12's validation; 835 claims read per second beside the
references; the 835 reader's peak memory.

    .venv/bin/python bench/x12.py [--claims 5000] [--claims-837 2000] [--runs 3] [--skip-memory]

837P: claims written per second by ``rcm.x12.claims837.write_837`` (model to X12 text, envelopes and counts
included), beside pyx12's 5010 validation of the very file written (``x12n_document``, what ``x12valid`` runs:
the reference a clearinghouse front end does per file). The batch is one practice: two billing providers, one
subscriber loop per patient (every third a dependent), claims of one to four lines with modifiers, a referring
and a rendering provider. Runs are interleaved (ours, pyx12, ours...); each figure is the median of the runs
with its range. No database, no network. Target: ours >= 40x.

835 (issue 7, step a), in one process, interleaved runs, medians [range], per CPU second of this process:
- "rcm 835 reader": ``transactions()`` + ``RemittanceStream``: every claim a typed ``Claim`` (amounts in cents,
  dates, adjustments, lines), envelopes and counts checked, balance computed;
- "pyx12 segment reader": ``pyx12.x12file.X12Reader`` walking the same file's segments (no map, no typing):
  target ours >= 1.5x;
- "edi-835-parser": its ``parse()`` building its claim objects (bench extra, ``pip install -e '.[bench]'``):
  target ours >= 2.5x;
- "bare split": ``str.split`` on the segment and element separators, counting CLP, nothing typed or checked:
  the floor; target ours >= 0.15x.
Peak memory: the streamed reader over 10,000 and 100,000 claims, each in a fresh subprocess (peak RSS): flat
means the larger file costs no more than the smaller. Files are written by our 835 writer under /tmp.
"""

from __future__ import annotations

import stdlib_first  # noqa: F401 - first: the standard library's queue before bench/queue.py

# isort: split
import argparse
import gc
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # the 835 shapes the tests use (tests/x12/remittances.py)

import pyx12.params  # noqa: E402
import pyx12.x12n_document  # noqa: E402
from tests.x12 import claimdata as data  # noqa: E402

from rcm.x12 import transactions  # noqa: E402
from rcm.x12.claims import ClaimBatch, SubscriberLoop  # noqa: E402
from rcm.x12.claims837 import write_837  # noqa: E402
from rcm.x12.remittance import RemittanceStream  # noqa: E402

FILES = Path(tempfile.gettempdir()) / "rcm-bench-x12"


def remittance_file(claims: int) -> Path:
    """An 835 of ``claims`` claims (paid, partially paid and denied in turn) in one transaction set."""
    path = FILES / f"remit-{claims}.835"
    if path.exists():
        return path
    from tests.x12 import remittances as shapes

    FILES.mkdir(parents=True, exist_ok=True)
    model = shapes.remittance(tuple(shapes.mixed_claims(claims)), (shapes.recoupment(2500),))
    temporary = path.with_suffix(".tmp")
    temporary.write_text(shapes.write(model))
    temporary.rename(path)
    return path


def read_ours(path: Path) -> int:
    count = 0
    with path.open("rb") as handle:
        for transaction in transactions(handle):
            stream = RemittanceStream(transaction)
            for _claim in stream.claims():
                count += 1
            if not stream.balance().balanced:
                raise SystemExit("the generated 835 does not balance")
    return count


def read_pyx12(path: Path) -> int:
    return count_pyx12(str(path))


def count_pyx12(source: str | io.StringIO) -> int:
    """CLP segments counted by pyx12's segment reader, from a file's path or from its text in memory."""
    import pyx12.x12file

    count = 0
    for segment in pyx12.x12file.X12Reader(source):
        if segment.get_seg_id() == "CLP":
            count += 1
    return count


def read_edi_835_parser(path: Path) -> int:
    import edi_835_parser

    # It warns once per segment it does not model (MOA, PLB...): noise, and time spent printing.
    warnings.filterwarnings("ignore", module="edi_835_parser")
    parsed = edi_835_parser.parse(str(path))
    return sum(len(transaction_set.claims) for transaction_set in parsed)


def read_bare_split(path: Path) -> int:
    text = path.read_text()
    count = 0
    for segment in text.split("~"):
        fields = segment.strip().split("*")
        if fields[0] == "CLP":
            count += 1
    return count


def _available(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _time(reader: Callable[[Path], int], path: Path, expected: int) -> float:
    # CPU time of this process, not wall time: on a machine shared with other work, a long run is preempted
    # more than a short one, which would skew the ratios against the slower reader.
    start = time.process_time()
    count = reader(path)
    elapsed = time.process_time() - start
    if count != expected:
        raise SystemExit(f"{reader.__name__} read {count} claims, expected {expected}")
    return expected / elapsed


def _peak_kib() -> int:
    """This process's peak resident set. Linux's VmHWM starts afresh at exec; ru_maxrss can carry the peak of
    the parent that forked us (the one that generated the big files), so it is only the fallback."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory_child(path: Path) -> None:
    """In a fresh process: peak RSS after importing, then after streaming every claim of ``path``."""
    before = _peak_kib()
    claims = read_ours(path)
    after = _peak_kib()
    print(json.dumps({"claims": claims, "baseline_kib": before, "peak_kib": after}))


def _memory(path: Path) -> dict[str, int]:
    done = subprocess.run(  # noqa: S603 - this script, this interpreter, a path it wrote
        [sys.executable, __file__, "--memory-child", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, int] = json.loads(done.stdout)
    return result


def bench_835(args: argparse.Namespace) -> None:
    path = remittance_file(args.claims)
    expected = read_bare_split(path)
    readers: list[tuple[str, Callable[[Path], int]]] = [
        ("rcm 835 reader (typed, streamed)", read_ours),
        ("pyx12 segment reader", read_pyx12),
    ]
    if _available("edi_835_parser"):
        readers.append(("edi-835-parser", read_edi_835_parser))
    else:
        print("edi-835-parser is not installed (pip install -e '.[bench]'): its line is left out")
    readers.append(("bare split on delimiters", read_bare_split))
    rates: dict[str, list[float]] = {name: [] for name, _ in readers}
    for _name, reader in readers:  # warm-up: imports, file cache
        _time(reader, path, expected)
    for _ in range(args.runs):
        for name, reader in readers:
            rates[name].append(_time(reader, path, expected))
    load = os.getloadavg()
    size = path.stat().st_size / 1e6
    print(
        f"\n835: {expected} claims ({size:.1f} MB, one transaction set), {args.runs} interleaved runs, medians"
        f" [range]; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    ours = statistics.median(rates[readers[0][0]])
    targets = {"pyx12 segment reader": 1.5, "edi-835-parser": 2.5, "bare split on delimiters": 0.15}
    for name, _ in readers:
        series = rates[name]
        median = statistics.median(series)
        line = f"  {name:36s} {median:>11,.0f} claims/s  [{min(series):,.0f} - {max(series):,.0f}]"
        if name in targets:
            ratio = ours / median
            verdict = "met" if ratio >= targets[name] else "NOT met"
            line += f"   ours / this = {ratio:.2f}x (target >= {targets[name]}x: {verdict})"
        print(line)
    if args.skip_memory:
        return
    print("\n835 streamed reader, peak RSS in a fresh process (baseline: after imports)")
    for claims in (10_000, 100_000):
        big = remittance_file(claims)
        found = _memory(big)
        print(
            f"  {found['claims']:>7,} claims ({big.stat().st_size / 1e6:6.1f} MB): peak"
            f" {found['peak_kib'] / 1024:6.1f} MiB, baseline {found['baseline_kib'] / 1024:6.1f} MiB,"
            f" growth {(found['peak_kib'] - found['baseline_kib']) / 1024:5.1f} MiB"
        )


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
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=5000, help="claims in the 835 speed file")
    parser.add_argument("--claims-837", type=int, default=2000, help="claims in the 837P batch")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs (medians are printed)")
    parser.add_argument("--skip-memory", action="store_true", help="leave out the 10k/100k memory runs")
    parser.add_argument("--memory-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child is not None:
        memory_child(args.memory_child)
        return
    bench_837p(args.claims_837, max(args.runs, 5))
    bench_835(args)


if __name__ == "__main__":
    main()

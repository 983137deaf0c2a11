"""Run every benchmark's ``--quick`` mode, one after the other: what CI calls.

Each benchmark runs in its own process (``python benchmarks/<name>.py --quick
--out OUT/<name>``), its output going to ``OUT/<name>.log``; the run fails if
any benchmark exits with an error, writes no file, or writes a text result
that does not name its commit and the load average. A summary table (exit
status, seconds, files written) is printed at the end.

Before running anything it checks that every ``bench_*.py`` and ``compare.py``
in this folder is in :data:`BENCHMARKS`, so that a new benchmark cannot stay
out of CI; ``--check`` stops after that check.

The quick modes measure nothing worth keeping: they exercise each script's
whole path (fits, child processes, tables, figures) at tiny sizes. They need
the ``[benchmarks]`` extra (matplotlib, psutil, dask, distributed) plus
pykeops (the ``[keops]`` extra) for bench_engines and KeOps' compiler.

Usage::

    python benchmarks/run_quick.py [--out DIR] [--only bench_speed,compare]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Every benchmark, in the order CI runs them.
BENCHMARKS = (
    "bench_speed",
    "bench_memory",
    "bench_predict_memory",
    "bench_solvers",
    "bench_engines",
    "bench_defaults",
    "bench_removal_moves",
    "compare",
    "bench_real_data",
    "bench_end_to_end",
    "bench_kmeans",
    "bench_small",
    "bench_dask",
)
#: What every text result must contain (see _harness.header_lines).
PROVENANCE = ("commit ", "load average")


def unlisted():
    """Benchmark scripts in this folder that BENCHMARKS leaves out, and the reverse."""
    present = {path.stem for path in HERE.glob("bench_*.py")}
    present |= {"compare"} if (HERE / "compare.py").exists() else set()
    return sorted(present - set(BENCHMARKS)), sorted(set(BENCHMARKS) - present)


def provenance_problems(directory):
    """Text results in ``directory`` that lack the commit or the load average."""
    problems = []
    for path in sorted(directory.glob("*.txt")):
        text = path.read_text()
        problems += [
            f"{path.name} names no {word.strip()!r}"
            for word in PROVENANCE
            if word not in text
        ]
    return problems


def children_cpu_seconds():
    """User plus system CPU seconds of the waited-for child processes so far."""
    used = os.times()
    return used.children_user + used.children_system


def run_one(name, out):
    """Run one benchmark's quick mode.

    Returns
    -------
    status : int
    seconds, cpu_seconds : float
        Wall-clock and CPU seconds (of the benchmark and its children).
    files : list of str
    problems : list of str
    """
    directory = out / name
    directory.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(HERE / f"{name}.py"), "--quick"]
    command += ["--out", str(directory)]
    started, cpu = time.perf_counter(), children_cpu_seconds()
    with open(out / f"{name}.log", "w") as log:
        status = subprocess.run(
            command, stdout=log, stderr=subprocess.STDOUT, check=False
        ).returncode
    seconds = time.perf_counter() - started
    cpu_seconds = children_cpu_seconds() - cpu
    files = sorted(path.name for path in directory.iterdir())
    problems = [] if files else ["wrote no file"]
    problems += provenance_problems(directory)
    return status, seconds, cpu_seconds, files, problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for logs and results"
    )
    parser.add_argument("--only", help="comma-separated names, a subset")
    parser.add_argument(
        "--check", action="store_true", help="only check that every script is listed"
    )
    args = parser.parse_args(argv)
    missing, stale = unlisted()
    if missing or stale:
        print(
            f"run_quick.py: not in BENCHMARKS: {missing}; listed but absent: {stale}",
            file=sys.stderr,
        )
        return 1
    if args.check:
        print(f"all {len(BENCHMARKS)} benchmarks are listed")
        return 0
    names = args.only.split(",") if args.only else BENCHMARKS
    out = args.out or Path(tempfile.mkdtemp(prefix="sparse_gmm_quick_"))
    out.mkdir(parents=True, exist_ok=True)
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"quick runs of {len(names)} benchmarks into {out} (load {load})")
    started = time.perf_counter()
    rows, failed = [], []
    for name in names:
        status, seconds, cpu, files, problems = run_one(name, out)
        ok = status == 0 and not problems
        rows.append((name, "ok" if ok else f"FAIL ({status})", seconds, cpu, files))
        print(f"{name:<22} {rows[-1][1]:<9} {seconds:6.1f} s", flush=True)
        if not ok:
            failed.append(name)
            tail = (out / f"{name}.log").read_text().splitlines()[-30:]
            print("\n".join(["  " + line for line in problems + tail]), flush=True)
    wall = time.perf_counter() - started
    cpu = sum(row[3] for row in rows)
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\n{'benchmark':<22} {'result':<9} {'wall s':>7} {'CPU s':>6}  files")
    for name, result, seconds, cpu_seconds, files in rows:
        print(
            f"{name:<22} {result:<9} {seconds:7.1f} {cpu_seconds:6.1f}  "
            + ", ".join(files)
        )
    print(
        f"total: {wall:.0f} s wall, {cpu:.0f} CPU-seconds in the benchmarks; "
        f"load average {load} at the end; logs and results in {out}"
    )
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: end-to-end throughput against a bare processing loop, latency at half load, the
gateway's submit latency, CPU per image per process kind, and peak memory, with issue 15's
targets met or not (bench.compare).

    make bench                                   # default worker count: one process per core
    python -m bench.bench --workers 2 --rounds 3
    python -m bench.bench --quick                # about a minute: the bare loop and both
                                                 # configurations' end-to-end rounds only

Makes a database and a queue of its own on the servers BENCH_POSTGRES_URL (a user that may
create databases) and BENCH_REDIS_URL name; for each one unset, a private server
(tools/servers) is started for the run and stopped at its end, as the tests and `make soak` do.
Then starts the model mock (no latency, no faults), the API and the workers (--workers
processes on the CPU queue, threads on the I/O queue) in two configurations, one after the
other: the lean one (logs at --log-level, no Flower) and the one that ships (bench/shipped.py:
the Procfile's processes under `make run`'s line prefixer, INFO logs, Flower attached); drives
them from this process over 127.0.0.1; prints a table and writes it to bench/results/
(latest.json, latest.md and a timestamped copy of each). Everything started is stopped, and the
database and the queue keys are removed, also on an error, Ctrl-C or SIGTERM.

A round during which other work took more than --max-other-share of the machine is run again
while --retry-budget lasts, and left out of the medians; the table says how many rounds each
figure is the median of, and when only disturbed rounds were left.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from datetime import UTC, datetime

from bench import procstat, report
from bench.cluster import REDIS_DB
from bench.phases import Phases
from tools.servers import given_or_private

# The variables that name existing servers; for each one unset, a private server is started.
SERVER_ENV = {"postgres": "BENCH_POSTGRES_URL", "redis": "BENCH_REDIS_URL"}


def given(server: str) -> bool:
    return bool(os.environ.get(SERVER_ENV[server]))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Throughput, latency, CPU and memory of the whole system; see bench/bench.py."
    )
    add = parser.add_argument
    add(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="Celery worker processes, and the baseline's pool size (default: one per core)",
    )
    add("--rounds", type=int, default=3, help="rounds per figure; the median is reported")
    add(
        "--quick",
        action="store_true",
        help="1 round, smaller batches, only the bare loop and both configurations end to end",
    )
    add("--batch", type=int, help="jobs per throughput round (default 500, quick 350)")
    add("--latency-seconds", type=float, help="length of a half-load round (default 20 s)")
    add("--slow-batch", type=int, help="jobs per slow-model round (default 200, quick 60)")
    add(
        "--log-level",
        default="WARNING",
        help="LOG_LEVEL (and uvicorn/celery log level) of the lean configuration",
    )
    add(
        "--procfile",
        default="Procfile",
        help="the shipped configuration's processes (default: the Procfile that make run runs)",
    )
    add(
        "--retry-budget",
        type=float,
        default=300,
        help="seconds the run may spend in all on rounds run again and waiting for quiet",
    )
    add(
        "--max-other-share",
        type=float,
        default=0.15,
        help="a round in which other work took more of the machine than this is run again",
    )
    args = parser.parse_args()
    if args.quick:
        args.rounds = 1
    args.batch = args.batch or (350 if args.quick else 500)
    args.latency_seconds = args.latency_seconds or (8.0 if args.quick else 20.0)
    args.slow_batch = args.slow_batch or (60 if args.quick else 200)
    return args


def run(bench: Phases) -> int:
    """Every phase (the quick set with --quick), then the table; 1 if a phase or the cleanup
    failed, 2 if the servers cannot be reached (nothing is measured then)."""
    started = time.monotonic()
    bench.details["max_other_share"] = bench.args.max_other_share
    try:
        servers = {
            name: f"{version} ({'from ' + SERVER_ENV[name] if given(name) else 'private'})"
            for name, version in bench.cluster.servers().items()
        }
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        bench.cluster.stop()
        return 2
    busy_at_start = procstat.busy_share(1.0)
    if busy_at_start > bench.args.max_other_share:
        print(
            f"note: other work takes {busy_at_start:.0%} of the machine; disturbed rounds "
            "are run again, up to a bound",
            flush=True,
        )
    try:
        ok = bench.phase("inputs", bench.make_inputs)
        if ok:
            bench.phase("baseline", bench.baseline)
        full = not bench.args.quick
        if ok and bench.phase("start system", bench.start_system):
            if full:
                bench.phase("POST /jobs latency", bench.post_latency)
            if bench.phase("start worker", bench.start_worker):
                if bench.phase("throughput", bench.throughput):
                    bench.phase("shipped configuration", bench.shipped_config)
                    if full:
                        bench.phase("stack floor", bench.stack_floor)
                        bench.phase("latency at half load", bench.latency)
                if full:
                    bench.phase("memory", bench.memory)
                    bench.phase("slow model", bench.slow_model)
    finally:
        print(f"[{time.strftime('%H:%M:%S')}] stopping ...", flush=True)
        problems = bench.cluster.stop()
        if problems:
            bench.details["cleanup_problems"] = problems
            print("cleanup:", *problems, sep="\n  ", file=sys.stderr)
    bench.details["phase_s"]["total"] = round(time.monotonic() - started, 1)
    header = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": report.git_commit(),
        "machine": report.machine(),
        "other_work_at_start": f"{busy_at_start:.0%} of the machine",
        "other_work_limit": f"{bench.args.max_other_share:.0%} of the machine, per round",
        "workers": bench.args.workers,
        "rounds": bench.args.rounds,
        "quick": bench.args.quick,
        "batch": bench.args.batch,
        "servers": servers,
        "settings": {k: v for k, v in bench.cluster.settings.items() if k != "DATA_DIR"},
        "logs": str(bench.cluster.logs),
    }
    rows = report.rows(bench.details)
    print(report.text_table(rows))
    for path in report.write(rows, header, bench.details)[:2]:
        print(f"written: {path}")
    if bench.details["errors"]:
        print(f"phases that failed: {', '.join(bench.details['errors'])}", file=sys.stderr)
    return 1 if bench.details["errors"] or bench.details.get("cleanup_problems") else 0


def main() -> int:
    args = parse_args()
    # SIGTERM ends the run as Ctrl-C does: through the cleanup, which stops everything (the
    # private servers last).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    urls = os.environ.get(SERVER_ENV["postgres"]), os.environ.get(SERVER_ENV["redis"])
    with given_or_private(*urls, redis_db=REDIS_DB, say=say) as (admin_url, broker_url):
        return run(Phases(args, admin_url, broker_url))


def say(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


if __name__ == "__main__":
    sys.exit(main())

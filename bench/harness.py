"""What every measurement needs: the cluster, rounds that other work did not disturb, the CPU
of each kind of process while a load runs, and the run's collected details."""

from __future__ import annotations

import argparse
import os
import time
import traceback
from collections.abc import Callable
from typing import Any

from bench import inputs, loads, procstat
from bench.cluster import BROKER_URL, Cluster
from bench.loads import Body, LoadResult

Round = dict[str, Any]


def ms(seconds: float) -> float:
    return seconds * 1000


class Harness:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cluster = Cluster(args.workers, args.log_level)
        self.details: dict[str, Any] = {"errors": {}, "disturbed_rounds": {}, "phase_s": {}}
        self.retry_budget_s = args.retry_budget

    def phase(self, name: str, body: Callable[[], None]) -> bool:
        print(f"[{time.strftime('%H:%M:%S')}] {name} ...", flush=True)
        started = time.monotonic()
        try:
            body()
        except Exception as exc:  # noqa: BLE001 - report it, go on with the other phases
            traceback.print_exc()
            self.details["errors"][name] = repr(exc)
        self.details["phase_s"][name] = round(time.monotonic() - started, 1)
        return name not in self.details["errors"]

    def quiet_rounds(self, name: str, one_round: Callable[[], Round]) -> list[Round]:
        """Up to args.rounds rounds that other work did not disturb.

        A disturbed round is run again while the retry budget lasts (and at most 2 x rounds + 1
        rounds in all). The clean rounds are returned; if there is none, the least disturbed.
        Each round says how much of the machine other work took ("other_cpu_share").
        """
        wanted, limit = self.args.rounds, self.args.max_other_share
        clean: list[Round] = []
        disturbed: list[Round] = []
        while len(clean) < wanted and len(clean) + len(disturbed) < 2 * wanted + 1:
            started = time.monotonic()
            result = one_round()
            if result["other_cpu_share"] <= limit:
                clean.append(result)
                continue
            disturbed.append(result)
            if self.retry_budget_s <= 0:
                print(f"  {name}: disturbed; no retry budget left", flush=True)
                if clean:
                    break
                continue
            print(
                f"  {name}: other work took {result['other_cpu_share']:.0%} of the machine; "
                "round run again",
                flush=True,
            )
            procstat.wait_quiet(limit, timeout=min(30.0, self.retry_budget_s))
            self.retry_budget_s -= time.monotonic() - started
        self.details["disturbed_rounds"][name] = disturbed
        if clean:
            return clean
        return sorted(disturbed, key=lambda r: float(r["other_cpu_share"]))[:wanted]

    def kinds(self) -> dict[int, str]:
        c = self.cluster
        found = {os.getpid(): "bench client (load generator)"}
        for name, kind in (
            ("api", "api"),
            ("mlmock", "mlmock"),
            ("worker", "worker main"),
            ("worker-io", "worker io (threads)"),
            ("floor-api", procstat.FLOOR_API),
            ("floor-worker", procstat.FLOOR_MAIN),
        ):
            if name in c.system.procs:
                found[c.pid(name)] = kind
        found.update(dict.fromkeys(c.pool_pids(), "worker pool"))
        found.update(dict.fromkeys(c.pool_pids("floor-worker"), procstat.FLOOR_POOL))
        found.update(procstat.postgres_pids(c.database))
        found.update(procstat.redis_pids(int(BROKER_URL.rsplit(":", 1)[1].split("/")[0])))
        return found

    def measured(self, load: Callable[[], LoadResult]) -> tuple[LoadResult, Round]:
        """Run `load`; CPU seconds by process kind meanwhile, and the share of other work."""
        kinds = self.kinds()
        sessions = self.cluster.sessions()
        before = procstat.Snapshot.take(kinds)
        result = load()
        after = procstat.Snapshot.take(kinds | self.kinds())
        cpu = procstat.cpu_by_kind(before, after)
        return result, {
            "cpu_s": cpu,
            "pg_sessions_opened": self.cluster.sessions() - sessions,
            "other_cpu_share": procstat.other_share(cpu, after.at - before.at),
        }

    def bodies(self, images: list[inputs.Input]) -> list[Body]:
        cache: dict[str, Body] = {}
        return [cache.setdefault(i.name, loads.multipart(i)) for i in images]

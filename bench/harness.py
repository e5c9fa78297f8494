"""What every measurement needs: the cluster, rounds that other work did not disturb, the CPU
of each kind of process while a load runs, and the run's collected details."""

from __future__ import annotations

import argparse
import os
import statistics
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from bench import inputs, loads, procstat
from bench.cluster import Cluster, wait_jobs_done
from bench.loads import Body, LoadResult, percentile

if TYPE_CHECKING:
    from bench.shipped import Shipped

Round = dict[str, Any]
SUBMIT_CLIENTS = 16


def ms(seconds: float) -> float:
    return seconds * 1000


class Harness:
    """The run's cluster and collected details; `admin_url` and `broker_url` are the servers
    the cluster's database and queue are made on (bench.cluster.Cluster)."""

    def __init__(self, args: argparse.Namespace, admin_url: str, broker_url: str) -> None:
        self.args = args
        self.cluster = Cluster(args.workers, args.log_level, admin_url, broker_url)
        self.details: dict[str, Any] = {"errors": {}, "disturbed_rounds": {}, "phase_s": {}}
        self.retry_budget_s = args.retry_budget
        # The Procfile's processes under tools.run, while the shipped configuration runs.
        self.shipped: Shipped | None = None

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
        if self.shipped is not None:
            found.update(self.shipped.kinds())
        found.update(procstat.postgres_pids(c.database, c.postmaster))
        found.update(procstat.redis_pids(c.redis_port))
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

    def batch_round(self, bodies: list[Body]) -> Round:
        """Submit `bodies` from SUBMIT_CLIENTS clients; first submit to last `succeeded`."""
        c = self.cluster
        assert c.engine is not None
        engine = c.engine
        started = time.time()
        rows: list[Any] = []

        def batch() -> LoadResult:
            res = loads.closed_loop(c.api_url, bodies, SUBMIT_CLIENTS)
            rows.extend(wait_jobs_done(engine, res.job_ids, timeout=max(300, len(bodies))))
            return res

        res, cpu = self.measured(batch)
        done = [r for r in rows if r.status == "succeeded"]
        if not done:
            failed = {r.error for r in rows if r.error}
            raise RuntimeError(f"no job succeeded: {res.refused()} {res.first} {failed}")
        end = max(r.finished_at.timestamp() for r in done)
        failed_count = sum(r.status == "failed" for r in rows)
        return {
            "jobs": len(bodies),
            "accepted": len(res.job_ids),
            "refused": res.refused(),
            "succeeded": len(done),
            "failed": failed_count,
            "unfinished": len(res.job_ids) - len(done) - failed_count,
            "submit_s": res.wall_s,
            "seconds": end - started,
            "images_per_s": len(done) / (end - started),
            "cpu_ms_per_image": {k: ms(v) / max(1, len(done)) for k, v in cpu["cpu_s"].items()},
            "other_cpu_share": cpu["other_cpu_share"],
            "pg_sessions_opened": cpu["pg_sessions_opened"],
        }

    def throughput_rounds(self, name: str, bodies: list[Body]) -> dict[str, Any]:
        """End-to-end rounds of `bodies`; the medians (CPU ms per image by kind) and rounds."""
        rounds = self.quiet_rounds(name, lambda: self.batch_round(bodies))
        kinds = sorted({k for r in rounds for k in r["cpu_ms_per_image"]})
        return {
            "jobs": len(bodies),
            "clients": SUBMIT_CLIENTS,
            "images_per_s": statistics.median([r["images_per_s"] for r in rounds]),
            "submit_s": statistics.median([r["submit_s"] for r in rounds]),
            "cpu_ms_per_image": {
                k: statistics.median([r["cpu_ms_per_image"].get(k, 0.0) for r in rounds])
                for k in kinds
            },
            "rounds": rounds,
        }

    def one_job_alone(self, bodies: list[Body]) -> dict[str, float]:
        """Each body alone, one after the other: from the client's send to the job's
        finished_at (polled every 5 ms; the same clock), in ms: p50, p90, max."""
        c = self.cluster
        assert c.engine is not None
        took = []
        with httpx.Client(base_url=c.api_url, timeout=60) as client:
            for body in bodies:
                sent_at = time.time()
                answer = client.post(
                    "/jobs", content=body.content, headers={"content-type": body.content_type}
                )
                if answer.status_code != 202:
                    raise RuntimeError(f"one job alone: {answer.status_code} {answer.text[:200]}")
                job_id = str(answer.json()["job_id"])
                rows = wait_jobs_done(c.engine, [job_id], timeout=30, interval=0.005)
                if not rows or rows[0].status != "succeeded":
                    raise RuntimeError(f"one job alone: {rows[0].status if rows else 'gone'}")
                took.append(rows[0].finished_at.timestamp() - sent_at)
        return {
            "jobs": len(took),
            "p50_ms": ms(percentile(took, 0.5)),
            "p90_ms": ms(percentile(took, 0.9)),
            "max_ms": ms(max(took)),
        }

"""The measurements, each a phase of the run; their figures go to `details`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench import baseline, inputs, loads, procstat
from bench.cluster import wait_jobs_done
from bench.harness import SUBMIT_CLIENTS, Harness, Round, ms
from bench.loads import Body, LoadResult, percentile
from bench.report import median
from bench.scenarios import big_image, job_times
from bench.shipped import Shipped

# A model server's answer time for the slow-model phase.
SLOW_MODEL_MS = 100
POST_LEVELS = (1, 16, 64)
# Issue 15's POST /jobs target is at 16 clients: the one level the shipped configuration runs.
SHIPPED_POST_CLIENTS = 16


class Phases(Harness):
    def make_inputs(self) -> None:
        self.pool = inputs.mix_pool()
        self.mix = inputs.job_mix(self.pool, self.args.batch)
        self.big = [inputs.big_jpeg(), inputs.big_png()]
        self.details["inputs"] = {
            "mix_shares": inputs.mix_shares(),
            "kinds": {
                kind: {
                    "images": len(items),
                    "mean_bytes": sum(len(i.data) for i in items) // len(items),
                }
                for kind, items in self.pool.items()
            },
            "big": [{"name": b.name, "size": b.size, "bytes": len(b.data)} for b in self.big],
        }

    def baseline(self) -> None:
        runner = baseline.Runner(self.mix, self.args.workers)

        def one_round() -> Round:
            # Both loops back to back, so that whatever else runs hits both alike.
            both = {loop: runner.measure(loop) for loop in baseline.LOOPS}
            share = max(each["other_cpu_share"] for each in both.values())
            return {**both, "other_cpu_share": share}

        try:
            rounds = self.quiet_rounds("baseline", one_round)
        finally:
            runner.close()
        out: dict[str, Any] = {"processes": self.args.workers, "images": len(self.mix)}
        for loop in baseline.LOOPS:
            out[loop] = {key: median([r[loop][key] for r in rounds]) for key in rounds[0][loop]}
        out["fit_image_to_baseline"] = median(
            [r["fit_image"]["images_per_s"] / r["baseline"]["images_per_s"] for r in rounds]
        )
        out["rounds"] = rounds
        out["same_output_dimensions"] = baseline.same_output_size(self.mix[:10])
        self.details["baseline"] = out

    def start_system(self) -> None:
        self.cluster.create_database()
        self.cluster.start_mock()
        self.cluster.start_api()
        self.details["api_rss_kb_at_start"] = procstat.status_kb(self.cluster.pid("api"), "VmRSS")

    def post_latency(self) -> None:
        """POST /jobs from 1, 16 and 64 clients with no worker running (the lean API)."""
        c = self.cluster
        counts = {1: 40, 16: 160, 64: 256} if self.args.quick else {1: 150, 16: 480, 64: 768}
        out = self._post_warm_up(c.purge_queue)
        for clients in POST_LEVELS:
            out[str(clients)] = self._post_level(
                f"POST x{clients}", clients, counts[clients], c.purge_queue
            )
        self.details["post_jobs"] = out
        self.details["api_rss_kb_after_post_phase"] = procstat.status_kb(c.pid("api"), "VmRSS")

    def _post_warm_up(self, purge: Callable[[], object]) -> dict[str, Any]:
        """A few requests to warm the API up, their jobs removed; the POST figures' start."""
        c = self.cluster
        hd = self.bodies(self.pool[inputs.HD])
        warm = loads.closed_loop(c.api_url, hd * 2, 4)
        c.delete_jobs(warm.job_ids)
        purge()
        return {"body_kb": sum(len(b.content) for b in hd) / len(hd) / 1024}

    def _post_level(
        self, name: str, clients: int, count: int, purge: Callable[[], object]
    ) -> dict[str, Any]:
        """`count` POST /jobs of the HD JPEGs from `clients` clients, in quiet rounds (named
        `name`); each round's jobs are deleted and their messages dropped by `purge` after."""
        c = self.cluster
        hd = self.bodies(self.pool[inputs.HD])
        bodies = [hd[n % len(hd)] for n in range(count)]

        def one_round() -> Round:
            res, cpu = self.measured(lambda: loads.closed_loop(c.api_url, bodies, clients))
            c.delete_jobs(res.job_ids)
            purge()
            took = [s.latency_s for s in res.accepted]
            if not took:
                raise RuntimeError(f"every POST /jobs refused: {res.refused()}: {res.first}")
            return {
                "requests": len(bodies),
                "accepted": len(took),
                "refused": res.refused(),
                "rate_per_s": len(took) / res.wall_s,
                "p50_ms": ms(percentile(took, 0.50)),
                "p99_ms": ms(percentile(took, 0.99)),
                "cpu_ms_per_request": {
                    k: ms(v) / max(1, len(took)) for k, v in cpu["cpu_s"].items()
                },
                "other_cpu_share": cpu["other_cpu_share"],
                "pg_sessions_opened": cpu["pg_sessions_opened"],
            }

        return {"rounds": self.quiet_rounds(name, one_round)}

    def start_worker(self) -> None:
        c = self.cluster
        c.start_worker()
        self.details["worker_rss_kb_at_start"] = {
            "main": procstat.status_kb(c.pid("worker"), "VmRSS"),
            "pool": [procstat.status_kb(pid, "VmRSS") for pid in c.pool_pids()],
        }
        self._warm_up()

    def _alone_bodies(self) -> list[Body]:
        hd = self.bodies(self.pool[inputs.HD])
        return [hd[n % len(hd)] for n in range(10 if self.args.quick else 30)]

    def _warm_up(self) -> None:
        c = self.cluster
        warm = loads.closed_loop(c.api_url, self.bodies(self.mix[: 8 * self.args.workers]), 4)
        assert c.engine is not None
        wait_jobs_done(c.engine, warm.job_ids, timeout=120)

    def throughput(self) -> None:
        """The lean configuration: WARNING logs, no Flower, no line prefixer."""
        out = self.throughput_rounds("throughput", self.bodies(self.mix))
        self.details["throughput"] = out | {"alone": self.one_job_alone(self._alone_bodies())}

    def shipped_config(self) -> None:
        """The shipped configuration (bench.shipped) over the same jobs, right after the lean
        one; the lean processes are stopped meanwhile, and started again after. The full run
        also measures its POST /jobs at SHIPPED_POST_CLIENTS clients with the workers idle
        (running, Flower attached, consuming nothing), and its latency at half its rate."""
        c = self.cluster
        full = not self.args.quick
        for name in ("worker", "worker-io", "api", "mlmock"):
            if name in c.system.procs:
                c.system.stop(name)
        self.shipped = Shipped(c, Path(self.args.procfile))
        try:
            self.shipped.start()
            post = None
            if full:
                with self.shipped.consumers_paused():
                    post = self._post_warm_up(c.purge_messages)
                    post[str(SHIPPED_POST_CLIENTS)] = self._post_level(
                        f"shipped POST x{SHIPPED_POST_CLIENTS}",
                        SHIPPED_POST_CLIENTS,
                        480,
                        c.purge_messages,
                    )
            self._warm_up()
            out = self.throughput_rounds("shipped throughput", self.bodies(self.mix))
            out["alone"] = self.one_job_alone(self._alone_bodies())
            self.details["shipped"] = out
            if post is not None:
                out["post_jobs"] = post
            if full:
                rate = out["images_per_s"] / 2
                out["latency_half_load"] = self._half_load("shipped latency", rate)
        finally:
            self.shipped.stop()
            self.shipped = None
            if full:
                c.start_mock()
                c.start_api()
                c.start_worker()

    def stack_floor(self) -> None:
        """bench.floor (the same parts with none of the project's work) over the same batch:
        the most this stack gives on this machine, to compare the throughput with."""
        c = self.cluster
        assert c.engine is not None
        engine = c.engine
        bodies = self.bodies(self.mix)
        c.start_floor_api()
        try:
            self._floor_post_latency()
            c.start_floor_worker()
            warm = loads.closed_loop(c.floor_url, bodies[: 8 * self.args.workers], 4)
            wait_floor_done(engine, warm.job_ids, timeout=120)

            def one_round() -> Round:
                started = time.time()
                ends: list[float] = []

                def batch() -> LoadResult:
                    res = loads.closed_loop(c.floor_url, bodies, SUBMIT_CLIENTS)
                    ends.extend(wait_floor_done(engine, res.job_ids, max(300, len(bodies))))
                    return res

                res, cpu = self.measured(batch)
                if len(ends) != len(bodies):
                    raise RuntimeError(f"stack floor: {len(ends)} of {len(bodies)} images done")
                return {
                    "images_per_s": len(ends) / (max(ends) - started),
                    "submit_s": res.wall_s,
                    "cpu_ms_per_image": {k: ms(v) / len(ends) for k, v in cpu["cpu_s"].items()},
                    "other_cpu_share": cpu["other_cpu_share"],
                }

            rounds = self.quiet_rounds("stack floor", one_round)
        finally:
            c.stop_floor()
        kinds = sorted({k for r in rounds for k in r["cpu_ms_per_image"]})
        self.details["stack_floor"] = self.details.get("stack_floor", {}) | {
            "jobs": len(bodies),
            "clients": SUBMIT_CLIENTS,
            "images_per_s": median([r["images_per_s"] for r in rounds]),
            "cpu_ms_per_image": {
                k: median([r["cpu_ms_per_image"].get(k, 0.0) for r in rounds]) for k in kinds
            },
            "rounds": rounds,
        }

    def _floor_post_latency(self) -> None:
        """bench.floor's gateway under POST_LEVELS[-1] clients, with no worker: the submit
        latency this stack gives with none of the project's work."""
        c = self.cluster
        hd = self.bodies(self.pool[inputs.HD])
        clients = POST_LEVELS[-1]
        bodies = [hd[n % len(hd)] for n in range(256 if self.args.quick else 768)]
        loads.closed_loop(c.floor_url, hd * 2, 4)  # warm-up

        def one_round() -> Round:
            res, cpu = self.measured(lambda: loads.closed_loop(c.floor_url, bodies, clients))
            c.purge_floor_queue()
            took = [s.latency_s for s in res.accepted]
            if not took:
                raise RuntimeError(f"stack floor: every POST refused: {res.first}")
            return {
                "rate_per_s": len(took) / res.wall_s,
                "p50_ms": ms(percentile(took, 0.50)),
                "p99_ms": ms(percentile(took, 0.99)),
                "gateway_cpu_ms_per_request": ms(cpu["cpu_s"].get(procstat.FLOOR_API, 0.0))
                / len(took),
                "other_cpu_share": cpu["other_cpu_share"],
            }

        rounds = self.quiet_rounds("stack floor, POST", one_round)
        self.details["stack_floor"] = {
            "post": {"clients": clients, "rounds": rounds}
            | {
                key: median([r[key] for r in rounds])
                for key in rounds[0]
                if key != "other_cpu_share"
            }
        }

    def latency(self) -> None:
        """The lean configuration's latency at half its end-to-end rate."""
        rate = self.details["throughput"]["images_per_s"] / 2
        self.details["latency_half_load"] = self._half_load("latency", rate)

    def _half_load(self, name: str, rate: float) -> dict[str, Any]:
        """Jobs of the mix sent at `rate` a second (open loop) for --latency-seconds, in quiet
        rounds named `name`: submit to succeeded and created_at to finished_at, ms (medians of
        the rounds' p50, p95, p99)."""
        c = self.cluster
        assert c.engine is not None
        engine = c.engine
        count = max(1, round(rate * self.args.latency_seconds))
        bodies = self.bodies(inputs.job_mix(self.pool, count))

        def one_round() -> Round:
            rows: list[Any] = []

            def steady() -> LoadResult:
                res = loads.open_loop(c.api_url, bodies, rate)
                timeout = self.args.latency_seconds + 300
                rows.extend(wait_jobs_done(engine, res.job_ids, timeout=timeout))
                return res

            res, cpu = self.measured(steady)
            client, server = job_times(res, rows)
            return {
                "jobs": count,
                "sent_late": res.late,
                "refused": res.refused(),
                "succeeded": len(client),
                "failed": sum(r.status == "failed" for r in rows),
                **{
                    f"submit_to_succeeded_p{p}_ms": ms(percentile(client, p / 100))
                    for p in (50, 95, 99)
                },
                **{
                    f"created_to_finished_p{p}_ms": ms(percentile(server, p / 100))
                    for p in (50, 95, 99)
                },
                "other_cpu_share": cpu["other_cpu_share"],
                "pg_sessions_opened": cpu["pg_sessions_opened"],
            }

        rounds = self.quiet_rounds(name, one_round)
        out: dict[str, Any] = {
            "offered_per_s": rate,
            "seconds": self.args.latency_seconds,
            "jobs": count,
        }
        for key in rounds[0]:
            if key.endswith("_ms"):
                out[key] = median([r[key] for r in rounds])
        return out | {"rounds": rounds}

    def slow_model(self) -> None:
        """End to end with a model server that takes SLOW_MODEL_MS to answer: the split
        deployment (a thread pool waits on the model) against one process pool serving both
        queues (the model call then holds a process)."""
        c = self.cluster
        bodies = self.bodies(self.mix[: self.args.slow_batch])
        out: dict[str, Any] = {
            "model_ms": SLOW_MODEL_MS,
            "jobs": len(bodies),
            "clients": SUBMIT_CLIENTS,
        }
        c.restart_mock(SLOW_MODEL_MS)
        try:
            for layout, split in (("one pool", False), ("split", True)):
                c.stop_workers()
                c.start_worker(split=split)
                rounds = self.quiet_rounds(
                    f"slow model, {layout}", lambda: self.batch_round(bodies)
                )
                out[layout] = {
                    "images_per_s": median([r["images_per_s"] for r in rounds]),
                    "rounds": rounds,
                }
        finally:
            c.restart_mock(0)
            c.stop_workers()
            c.start_worker()
        self.details["slow_model"] = out

    def memory(self) -> None:
        c = self.cluster
        assert c.engine is not None
        self.details["peak_rss_kb_after_load"] = procstat.peaks_by_kind(self.kinds())
        self.details["big_images"] = big_image(c, self.big)


def wait_floor_done(engine: sa.Engine, ids: list[str], timeout: float) -> list[float]:
    """Poll until bench.floor stored a result for every id, or `timeout`; when each was
    stored (epoch seconds)."""
    uuids = [uuid.UUID(each) for each in ids]
    query = sa.text(
        "SELECT extract(epoch FROM finished_at) FROM floor_results WHERE id = ANY(:ids)"
    )
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            done = [float(each) for each in conn.execute(query, {"ids": uuids}).scalars()]
        if len(done) == len(uuids) or time.monotonic() > deadline:
            return done
        time.sleep(0.25)

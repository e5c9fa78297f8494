"""The benchmark's figures as a table: printed, and written as JSON and Markdown."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import PIL
from PIL import features

from bench import compare
from bench.procstat import PG_ENDED, PG_OURS, SYSTEM_KINDS

RESULTS = Path(__file__).resolve().parent / "results"
# Issue 15's bounds, as the detail sections note them (bench.compare checks them).
POST_TARGET = compare.target("shipped", "post_16_clients_p99_ms")
HALF_LOAD_TARGET = compare.target("shipped", "half_load_p99_ms")
LEAN_RATIO_TARGET = compare.target("lean", "end_to_end_ratio")
ROOT = RESULTS.parent.parent


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kb = int(line.split()[1])
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "pillow": PIL.__version__,
        "libjpeg_turbo": bool(features.check_feature("libjpeg_turbo")),
    }


def git_commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=10
        )
        return done.stdout.strip()

    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return commit + (" + uncommitted changes" if git("status", "--porcelain") else "")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # nan
            return "n/a"
        return f"{value:,.3g}" if abs(value) < 10 else f"{value:,.0f}"
    return str(value)


Row = tuple[str, str, Any, str]  # section, figure, value, note


def rows(d: dict[str, Any]) -> list[Row]:
    """The table, from whatever phases ran."""
    out: list[Row] = []
    limit = d.get("max_other_share", 1.0)

    def rounds_note(name: str, rounds: list[dict[str, Any]]) -> str:
        """How many rounds the median is of, and whether other work disturbed them."""
        shares = [r["other_cpu_share"] for r in rounds]
        dropped = len(d.get("disturbed_rounds", {}).get(name, []))
        if shares and min(shares) > limit:
            return (
                f"{len(rounds)} rounds, all disturbed: other work took "
                f"{min(shares):.0%}-{max(shares):.0%} of the machine"
            )
        return f"median of {len(rounds)} rounds" + (
            f"; {dropped} disturbed rounds dropped" if dropped else ""
        )

    def add(section: str, figure: str, value: Any, note: str = "") -> None:
        out.append((section, figure, value, note))

    def post_rows(sec: str, post: dict[str, Any], round_name: str) -> None:
        """Each client count's rounds (`round_name` + count names them in quiet_rounds)."""
        for clients in sorted((k for k in post if k.isdigit()), key=int):
            rounds = post[clients]["rounds"]
            med = {k: median([r[k] for r in rounds]) for k in ("p50_ms", "p99_ms", "rate_per_s")}
            refused = sum(sum(r["refused"].values()) for r in rounds)
            note = (f"refused {refused}; " if refused else "") + rounds_note(
                f"{round_name}{clients}", rounds
            )
            target = f"target {POST_TARGET}; " if clients == compare.POST_CLIENTS else ""
            add(sec, f"{clients:>2} clients: p50 ms", med["p50_ms"])
            add(sec, f"{clients:>2} clients: p99 ms", med["p99_ms"], target + note)
            sessions = median([r["pg_sessions_opened"] / r["requests"] for r in rounds])
            add(
                sec,
                f"{clients:>2} clients: requests/s",
                med["rate_per_s"],
                f"PostgreSQL sessions opened per request: {sessions:.2f}",
            )
            cpu = {
                k: median([r["cpu_ms_per_request"].get(k, 0.0) for r in rounds])
                for k in rounds[0]["cpu_ms_per_request"]
            }
            add(
                sec,
                f"{clients:>2} clients: API CPU ms/request",
                cpu.get("api", 0.0),
                f"PostgreSQL (ours) {cpu.get(PG_OURS, 0.0):.1f}, "
                f"(ended backends) {cpu.get(PG_ENDED, 0.0):.1f}, "
                f"Redis {cpu.get('redis', 0.0):.1f}, "
                f"load generator {cpu.get('bench client (load generator)', 0.0):.1f}",
            )

    def latency_rows(config: str, lat: dict[str, Any], round_name: str) -> None:
        rounds = lat["rounds"]
        sec = (
            f"Submit to succeeded, {config}, open loop at {lat['offered_per_s']:.1f} jobs/s "
            f"(half its end-to-end rate) for {lat['seconds']:g} s"
        )
        for p in (50, 95, 99):
            target = f"target {HALF_LOAD_TARGET}" if p == 99 and config == "shipped" else ""
            add(sec, f"p{p} ms", lat[f"submit_to_succeeded_p{p}_ms"], target)
        add(sec, "rounds", len(rounds), rounds_note(round_name, rounds))
        for p in (50, 99):
            add(
                sec,
                f"p{p} ms, created_at to finished_at",
                lat[f"created_to_finished_p{p}_ms"],
                "without the upload",
            )
        add(
            sec,
            "jobs per round / failed / sent late",
            f"{lat['jobs']} / "
            f"{sum(r['failed'] for r in rounds)} / {sum(r['sent_late'] for r in rounds)}",
        )

    out.extend(compare.rows(d))
    base = d.get("baseline")
    if base:
        sec = f"Bare loop, {base['processes']} processes, {base['images']} images of the mix"
        note = rounds_note("baseline", base["rounds"])
        for loop, label in (("baseline", "baseline, draft to target"), ("fit_image", "fit_image")):
            add(sec, f"{label}: images/s", base[loop]["images_per_s"], note)
            add(sec, f"{label}: CPU ms/image", base[loop]["cpu_ms_per_image"])
        same = "same output dimensions" if base["same_output_dimensions"] else "OUTPUTS DIFFER"
        add(
            sec,
            "fit_image / baseline",
            base["fit_image_to_baseline"],
            f"median of the rounds' ratios; {same}",
        )

    post = d.get("post_jobs")
    if post:
        sec = f"POST /jobs, lean, workers idle (none running), {post['body_kb']:.0f} KB JPEGs"
        post_rows(sec, post, "POST x")
    shipped_post = d.get("shipped", {}).get("post_jobs")
    if shipped_post:
        sec = (
            f"POST /jobs, shipped, workers idle (running, consuming nothing), "
            f"{shipped_post['body_kb']:.0f} KB JPEGs"
        )
        post_rows(sec, shipped_post, "shipped POST x")

    tp = d.get("throughput")
    if tp:
        rounds = tp["rounds"]
        sec = f"End to end (lean), {tp['jobs']} jobs, {tp['clients']} submitting clients"
        add(
            sec,
            "images/s",
            tp["images_per_s"],
            rounds_note("throughput", rounds)
            + ": "
            + ", ".join(f"{r['images_per_s']:.1f}" for r in rounds),
        )
        if base:
            add(
                sec,
                "ratio to baseline",
                tp["images_per_s"] / base["baseline"]["images_per_s"],
                f"target {LEAN_RATIO_TARGET}",
            )
        add(sec, "submitting took, s", tp["submit_s"], "until every POST was answered")
        add(
            sec,
            "PostgreSQL sessions opened per job",
            median([r["pg_sessions_opened"] / r["jobs"] for r in rounds]),
        )
        add(
            sec,
            "failed / unfinished jobs",
            f"{sum(r['failed'] for r in rounds)} / {sum(r['unfinished'] for r in rounds)}",
        )
        sec = "CPU ms per image during the batch (lean)"
        cpu = tp["cpu_ms_per_image"]
        for kind, value in sorted(cpu.items(), key=lambda kv: -kv[1]):
            add(sec, kind, value, "" if kind in SYSTEM_KINDS else "not the system under test")
        add(
            sec,
            "total of the system under test",
            sum(v for k, v in cpu.items() if k in SYSTEM_KINDS),
        )
        if base:
            add(sec, "baseline loop, for comparison", base["baseline"]["cpu_ms_per_image"])

    floor = d.get("stack_floor")
    if floor and "post" in floor:
        post_floor = floor["post"]
        sec = (
            "Stack floor, POST /jobs with no worker "
            f"({post_floor['clients']} clients, the same JPEGs; bench/floor.py's gateway)"
        )
        add(sec, "p50 ms", post_floor["p50_ms"])
        add(
            sec,
            "p99 ms",
            post_floor["p99_ms"],
            rounds_note("stack floor, POST", post_floor["rounds"]),
        )
        add(sec, "requests/s", post_floor["rate_per_s"])
        add(sec, "gateway CPU ms/request", post_floor["gateway_cpu_ms_per_request"])
    if floor and "rounds" in floor:
        sec = (
            f"Stack floor (bench/floor.py: the same parts, none of the project's work), "
            f"{floor['jobs']} jobs, {floor['clients']} submitting clients"
        )
        add(
            sec,
            "images/s",
            floor["images_per_s"],
            rounds_note("stack floor", floor["rounds"])
            + ": "
            + ", ".join(f"{r['images_per_s']:.1f}" for r in floor["rounds"]),
        )
        if base:
            add(sec, "ratio to baseline", floor["images_per_s"] / base["baseline"]["images_per_s"])
        if tp:
            add(
                sec,
                "the project / the floor",
                tp["images_per_s"] / floor["images_per_s"],
                "end-to-end images/s, each measured above",
            )
        cpu = floor["cpu_ms_per_image"]
        for kind, value in sorted(cpu.items(), key=lambda kv: -kv[1]):
            if value >= 0.05 and kind in SYSTEM_KINDS:
                add(sec, f"CPU ms per image: {kind}", value)
        add(
            sec,
            "CPU ms per image: total",
            sum(v for k, v in cpu.items() if k in SYSTEM_KINDS),
            "the project's processes, idle meanwhile, included",
        )

    slow = d.get("slow_model")
    if slow:
        sec = (
            f"End to end with a model that answers in {slow['model_ms']} ms, "
            f"{slow['jobs']} jobs, {slow['clients']} submitting clients"
        )
        for layout, note in (
            ("one pool", "one worker, its processes serve both queues"),
            ("split", "processes on the CPU queue, threads on the I/O queue (compose's layout)"),
        ):
            if layout in slow:
                add(sec, f"{layout}: images/s", slow[layout]["images_per_s"], note)
        if "one pool" in slow and "split" in slow:
            add(
                sec,
                "split / one pool",
                slow["split"]["images_per_s"] / slow["one pool"]["images_per_s"],
            )

    shipped_lat = d.get("shipped", {}).get("latency_half_load")
    if shipped_lat:
        latency_rows("shipped", shipped_lat, "shipped latency")
    lat = d.get("latency_half_load")
    if lat:
        latency_rows("lean", lat, "latency")

    peaks = d.get("peak_rss_kb_after_load")
    if peaks:
        sec = "Peak RSS (VmHWM) after the load phases, MB"
        for kind, entry in sorted(peaks.items()):
            n = entry["processes"]
            add(sec, kind, entry["max_peak_kb"] / 1024, f"largest of {n}" if n > 1 else "")

    big = d.get("big_images")
    if big:
        sec = "Largest accepted image (50 MP), one job at a time"
        names = [k for k, v in big.items() if isinstance(v, dict) and "bytes" in v]
        for name in names:
            e = big[name]
            status = ",".join(e["job_status"]) or f"refused {e['refused']}"
            add(
                sec,
                f"worker pool peak RSS MB, {name}",
                e["worker_pool_peak_kb"] / 1024,
                f"{e['bytes'] / 2**20:.1f} MiB file; job {status}; fit step "
                f"{e['fit_step_ms'] or 0:.0f} ms; target < 400",
            )
        add(
            sec,
            "API RSS MB: at start, after POST phase, before big uploads",
            f"{d.get('api_rss_kb_at_start', 0) / 1024:.0f}, "
            f"{d.get('api_rss_kb_after_post_phase', 0) / 1024:.0f}, "
            f"{big['api_rss_before_kb'] / 1024:.0f}",
        )
        if names:
            first = big[names[0]]
            add(
                sec,
                f"API RSS MB after one {first['bytes'] / 2**20:.0f} MiB upload",
                first["api_rss_after_kb"] / 1024,
                f"peak meanwhile {first['api_peak_kb'] / 1024:.0f}",
            )
        three = big.get("api_after_3_concurrent")
        if three:
            add(
                sec,
                "API RSS MB after 3 more at once",
                three["api_rss_after_kb"] / 1024,
                f"peak meanwhile {three['api_peak_kb'] / 1024:.0f}",
            )

    for name, seconds in d.get("phase_s", {}).items():
        add("Run time, s", name, seconds)
    for name, error in d.get("errors", {}).items():
        add("Errors", name, "failed", error[:200])
    return out


def text_table(rows: list[Row]) -> str:
    width = max(len(figure) for _, figure, _, _ in rows)
    lines, section = [], None
    for sec, figure, value, note in rows:
        if sec != section:
            lines.append(f"\n{sec}")
            section = sec
        shown = _fmt(value)
        lines.append(f"  {figure:<{width}}  {shown:>12}  {note}".rstrip())
    return "\n".join(lines)


def _header_value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def markdown(rows: list[Row], header: dict[str, Any]) -> str:
    out = ["# Benchmark", ""]
    out += [f"- **{key}**: {_header_value(value)}" for key, value in header.items()]
    section = None
    for sec, fig, val, note in rows:
        if sec != section:
            out += ["", f"## {sec}", "", "| Figure | Value | Note |", "| --- | ---: | --- |"]
            section = sec
        out.append(f"| {fig.strip()} | {_fmt(val)} | {note} |")
    return "\n".join(out) + "\n"


def write(rows: list[Row], header: dict[str, Any], data: dict[str, Any]) -> list[Path]:
    """Write the table and its data to bench/results/: latest.{json,md} and a timestamped copy
    of each for a full run, quick.{json,md} (not kept in git) for a --quick one. Returns the
    paths, the JSON first."""
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    document = {
        **header,
        "summary": compare.summary(data),
        "table": [{"section": s, "figure": f, "value": v, "note": n} for s, f, v, n in rows],
        "details": data,
    }
    text = json.dumps(document, indent=2, default=str, allow_nan=True) + "\n"
    md = markdown(rows, header)
    written = []
    # A quick run is a try: it leaves the full runs' figures (which the docs quote) alone.
    for name in ("quick",) if header.get("quick") else ("latest", stamp):
        for suffix, content in ((".json", text), (".md", md)):
            path = RESULTS / f"{name}{suffix}"
            path.write_text(content)
            written.append(path)
    return written

"""CPU time and memory of processes, read from /proc (Linux only).

Processes are grouped by kind: the API, the worker's main process and its pool processes, the
model mock, PostgreSQL (this run's backends apart from the server's shared processes) and
Redis. A process's CPU is its own (utime + stime): what a process that ended within the window
spent shows up only in the machine's total, with anything else that ran meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    text = (PROC / str(pid) / "stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # fields from the 3rd (state) on


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` (all its threads)."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) * TICK_S


def parent(pid: int) -> int:
    return int(_stat_fields(pid)[1])


def cmdline(pid: int) -> str:
    return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()


def status_kb(pid: int, key: str) -> int:
    """A `kB` figure of /proc/<pid>/status, e.g. VmHWM (peak RSS) or VmRSS."""
    for line in (PROC / str(pid) / "status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    return 0


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0; needs to own the process)."""
    try:
        (PROC / str(pid) / "clear_refs").write_text("5")
    except OSError:
        return False
    return True


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores) since boot, from /proc/stat:
    processes and steal (another guest on the host); not interrupts, which are charged to no
    process and would count this run's own network traffic as other work."""
    fields = (PROC / "stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + steal) * TICK_S


def busy_share(seconds: float) -> float:
    """The share of the machine's cores busy over the next `seconds`."""
    before = machine_busy_seconds()
    time.sleep(seconds)
    return (machine_busy_seconds() - before) / (seconds * (os.cpu_count() or 1))


def wait_quiet(share: float, timeout: float) -> bool:
    """Wait (up to `timeout` s) for a second in which the machine is busy less than `share`
    of its cores; whether it came."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if busy_share(1.0) < share:
            return True
    return False


def _pids() -> list[int]:
    return [int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit()]


def children(pid: int) -> list[int]:
    found = []
    for each in _pids():
        with contextlib.suppress(OSError, ValueError, IndexError):
            if parent(each) == pid:
                found.append(each)
    return found


def _uid(pid: int) -> int:
    for line in (PROC / str(pid) / "status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return -1


PG_OURS = "postgres (this run's backends)"
PG_SERVER = "postgres (server: WAL writer, checkpointer...)"
PG_OTHERS = "postgres (other databases' backends)"
PG_ENDED = "postgres (backends that ended meanwhile)"
_PG_SERVER_TITLES = (
    "checkpointer",
    "background writer",
    "walwriter",
    "autovacuum launcher",
    "autovacuum worker",
    "logical replication launcher",
    "stats collector",
    "archiver",
    "io worker",  # PostgreSQL 18's asynchronous I/O (io_method=worker, its default)
    "walsummarizer",
)


# bench.floor's processes, measured in a phase of their own.
FLOOR_API = "stack floor: gateway"
FLOOR_MAIN = "stack floor: worker main"
FLOOR_POOL = "stack floor: worker pool"

# The shipped configuration's own processes (bench.shipped).
PREFIXER = "make run line prefixer (tools/run.py)"
FLOWER = "flower"

# The system under test (or the stack floor): not the load generator, nor other work on the
# machine.
SYSTEM_KINDS = frozenset(
    {
        PREFIXER,
        FLOWER,
        "api",
        "worker main",
        "worker pool",
        "worker io (threads)",
        FLOOR_API,
        FLOOR_MAIN,
        FLOOR_POOL,
        "mlmock",
        "redis",
        PG_OURS,
        PG_SERVER,
        PG_ENDED,
    }
)


def postgres_pids(database: str, postmaster: int | None) -> dict[int, str]:
    """The processes of the PostgreSQL server whose main process is `postmaster` (it and its
    children), by kind: PG_OURS, PG_SERVER or PG_OTHERS; none without `postmaster` (a server
    on another machine). By process tree, not by user: a private server runs as a user of its
    own, and another server on the machine may run as `postgres`."""
    if postmaster is None or not (PROC / str(postmaster)).exists():
        return {}
    kinds = {postmaster: PG_SERVER}
    for pid in children(postmaster):
        with contextlib.suppress(OSError):
            kinds[pid] = postgres_kind(cmdline(pid), database)
    return kinds


def postgres_kind(title: str, database: str) -> str:
    """PG_OURS, PG_SERVER or PG_OTHERS for a PostgreSQL child process's title (its
    cmdline): "postgres: [<cluster>: ]<user> <database> <client> <state>" for a backend,
    "postgres: [<cluster>: ]walwriter" and the like for the server's own processes."""
    words = title.split()
    if not words or words[0] != "postgres:":
        return PG_SERVER
    rest = " ".join(words[2:] if len(words) > 1 and words[1].endswith(":") else words[1:])
    if rest.startswith(_PG_SERVER_TITLES):
        return PG_SERVER
    return PG_OURS if database in rest.split()[:2] else PG_OTHERS


def postmaster_children_seconds(kinds: dict[int, str]) -> float:
    """CPU of the PostgreSQL backends that ended so far (the postmaster's cutime + cstime):
    a connection opened and closed within a round is seen only there. Any database's."""
    for pid, kind in kinds.items():
        with contextlib.suppress(OSError):
            if kind == PG_SERVER and not cmdline(pid).startswith("postgres:"):
                fields = _stat_fields(pid)
                return (int(fields[13]) + int(fields[14])) * TICK_S
    return 0.0


def redis_pids(port: int) -> dict[int, str]:
    kinds = {}
    for pid in _pids():
        with contextlib.suppress(OSError):
            if (PROC / str(pid) / "comm").read_text().strip() == "redis-server" and (
                f":{port}" in cmdline(pid)
            ):
                kinds[pid] = "redis"
    return kinds


@dataclass
class Snapshot:
    cpu: dict[int, float]
    kind: dict[int, str]
    machine: float
    at: float
    pg_ended: float

    @classmethod
    def take(cls, kinds: dict[int, str]) -> Snapshot:
        cpu = {}
        for pid in kinds:
            with contextlib.suppress(OSError):
                cpu[pid] = cpu_seconds(pid)
        return cls(
            cpu,
            dict(kinds),
            machine_busy_seconds(),
            time.monotonic(),
            postmaster_children_seconds(kinds),
        )


OTHER = "anything else on the machine"


def other_share(cpu: dict[str, float], wall_s: float) -> float:
    """The share of the machine's cores taken by work that is not this run's."""
    other = cpu.get(OTHER, 0.0) + cpu.get(PG_OTHERS, 0.0)
    return other / (wall_s * (os.cpu_count() or 1))


def cpu_by_kind(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds spent between the snapshots, by kind; a process new in `after` counts whole.

    OTHER is what the machine spent outside the known processes (other work on the machine,
    processes that came and went, the kernel): it tells how clean the measurement was.
    """
    spent: dict[str, float] = defaultdict(float)
    for pid, seconds in after.cpu.items():
        spent[after.kind[pid]] += seconds - before.cpu.get(pid, 0.0)
    spent[PG_ENDED] = after.pg_ended - before.pg_ended
    spent[OTHER] = max(0.0, after.machine - before.machine - sum(spent.values()))
    return dict(spent)


def peaks_by_kind(kinds: dict[int, str]) -> dict[str, dict[str, int]]:
    """Per kind: the largest VmHWM of one of its processes (kB) and how many processes."""
    out: dict[str, dict[str, int]] = {}
    for pid, kind in kinds.items():
        with contextlib.suppress(OSError):
            peak = status_kb(pid, "VmHWM")
            entry = out.setdefault(kind, {"max_peak_kb": 0, "processes": 0})
            entry["max_peak_kb"] = max(entry["max_peak_kb"], peak)
            entry["processes"] += 1
    return out

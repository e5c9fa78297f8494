"""Which PostgreSQL processes the benchmark charges to this run, to the server, or to others."""

from __future__ import annotations

import pytest

from bench.procstat import PG_OTHERS, PG_OURS, PG_SERVER, postgres_kind


@pytest.mark.parametrize(
    ("title", "kind"),
    [
        ("postgres: postgres pipelines_bench_1 127.0.0.1(5000) idle", PG_OURS),
        ("postgres: 15/main: postgres pipelines_bench_1 127.0.0.1(5000) idle", PG_OURS),
        ("postgres: postgres exp 127.0.0.1(5000) idle", PG_OTHERS),
        ("postgres: 15/main: walwriter", PG_SERVER),
        ("postgres: checkpointer", PG_SERVER),
        ("postgres: io worker 2", PG_SERVER),  # PostgreSQL 18, io_method=worker
        ("/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main", PG_SERVER),
    ],
)
def test_a_process_title_tells_its_kind(title: str, kind: str) -> None:
    assert postgres_kind(title, "pipelines_bench_1") == kind

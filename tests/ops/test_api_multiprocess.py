"""Several API processes on one host: every scrape counts the jobs all of them took."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import TEST_ENV
from tests.helpers.product import car_config, create_pipeline
from tests.ops.helpers import PHOTO, scrape, value
from tests.system import BIN, System, free_port, http_ok, make_env, wait_until

JOBS = 8


def test_api_processes_share_their_counts(tmp_path: Path, system: System) -> None:
    folder = tmp_path / "prometheus"
    folder.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api = System(env=make_env({**TEST_ENV, "PROMETHEUS_MULTIPROC_DIR": str(folder)}), logs=tmp_path)
    api.start("api2", str(BIN / "uvicorn"), "api.main:app", "--port", str(port), "--workers", "2")
    try:
        wait_until(http_ok(f"{url}/health"), 30, "API with 2 processes")
        with httpx.Client(base_url=url, timeout=30) as client:
            pipeline = create_pipeline(client, car_config(), prefix="multi")
        for _ in range(JOBS):  # a connection each, so that both processes take some
            response = httpx.post(
                f"{url}/jobs",
                files={"image": ("car.jpg", PHOTO)},
                data={"pipeline_id": str(pipeline)},
                timeout=30,
            )
            assert response.status_code == 202, response.text
        scrapes = [scrape(f"{url}/metrics") for _ in range(6)]
    finally:
        api.stop()

    label = str(pipeline)
    for samples in scrapes:
        assert value(samples, "pipeline_jobs_submitted_total", pipeline=label, kind="new") == JOBS
        count = "pipeline_submit_duration_seconds_count"
        assert value(samples, count, route="/jobs", status="202") == JOBS
    # the processes wrote to the folder, one file each (at least one)
    assert list(folder.glob("counter_*.db"))

"""pipectl against a scripted API (httpx.MockTransport): the requests it makes for each
command, pagination, retries and how it shows answers, without a server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.client import ApiClient, ApiError
from cli.render import result_text
from tests import images
from tests.cli.helpers import json_of, pipectl

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, seen: list[httpx.Request] | None = None) -> ApiClient:
    def record(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return handler(request)

    return ApiClient(
        "http://api.test", "k3y", transport=httpx.MockTransport(record), sleep=lambda s: None
    )


def job(n: int, status: str = "succeeded", result: Any = None) -> dict[str, Any]:
    return {
        "job_id": f"00000000-0000-0000-0000-{n:012d}",
        "pipeline_id": 1,
        "status": status,
        "result": result,
        "error": None,
        "steps": [],
        "created_at": "2026-11-29T00:00:00Z",
    }


# --- GET /jobs --------------------------------------------------------------------------------


def test_jobs_follows_next_cursor_until_the_limit_and_sends_the_filters() -> None:
    seen: list[httpx.Request] = []
    pages = {
        None: {"items": [job(1), job(2)], "next_cursor": "c2"},
        "c2": {"items": [job(3), job(4)], "next_cursor": "c3"},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=pages[request.url.params.get("cursor")])

    listed = json_of(
        pipectl(
            "jobs",
            "--pipeline",
            "7",
            "--status",
            "succeeded",
            "--detected",
            "--limit",
            "3",
            "--json",
            client=client(handler, seen),
        )
    )

    assert [j["job_id"][-1] for j in listed] == ["1", "2", "3"]
    assert [dict(r.url.params) for r in seen] == [
        {"pipeline_id": "7", "status": "succeeded", "detected": "true", "limit": "3"},
        {
            "pipeline_id": "7",
            "status": "succeeded",
            "detected": "true",
            "limit": "1",
            "cursor": "c2",
        },
    ]
    assert all(r.url.path == "/jobs" and r.headers["x-api-key"] == "k3y" for r in seen)


def test_jobs_stops_at_the_last_page_and_leaves_out_unset_filters() -> None:
    seen: list[httpx.Request] = []
    page = {"items": [job(1, result=None), job(2, "failed")], "next_cursor": None}

    result = pipectl(
        "jobs", "--no-detected", client=client(lambda r: httpx.Response(200, json=page), seen)
    )

    assert result.exit_code == 0, result.output
    assert [dict(r.url.params) for r in seen] == [{"detected": "false", "limit": "20"}]
    assert "00000000-0000-0000-0000-000000000001" in result.stdout
    assert "no car" in result.stdout


def test_a_missing_endpoint_is_reported_as_the_apis_404() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"detail": "Not Found"})

    result = pipectl("jobs", client=client(handler))

    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "HTTP 404" in result.stderr


# --- PUT /pipelines/{id} ----------------------------------------------------------------------


def test_pipelines_update_puts_the_config_and_the_given_fields(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    config = {"datatype": "CarDetection", "steps": [{"type": "image.fit@v1"}]}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        return httpx.Response(200, json={"id": 5, "name": "cars", "version": 2, **body})

    shown = json_of(
        pipectl(
            "pipelines",
            "update",
            "5",
            str(path),
            "--description",
            "v2",
            "--json",
            client=client(handler, seen),
        )
    )

    [request] = seen
    assert (request.method, request.url.path) == ("PUT", "/pipelines/5")
    assert json.loads(request.content) == {"config": config, "description": "v2"}
    assert shown["version"] == 2


def test_pipelines_update_sends_the_name_from_the_file_and_name_overrides_it(
    tmp_path: Path,
) -> None:
    seen: list[httpx.Request] = []
    config = {"datatype": "ImageData", "steps": [{"type": "image.fit@v1"}]}
    path = tmp_path / "body.json"
    path.write_text(json.dumps({"name": "cars", "description": "d", "config": config}))

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": 5, **json.loads(request.content)})

    from_file = pipectl("pipelines", "update", "5", str(path), client=client(handler, seen))
    renamed = pipectl(
        "pipelines", "update", "5", str(path), "--name", "trucks", client=client(handler, seen)
    )

    assert (from_file.exit_code, renamed.exit_code) == (0, 0)
    assert json.loads(seen[0].content) == {"name": "cars", "description": "d", "config": config}
    assert json.loads(seen[1].content)["name"] == "trucks"


def test_pipelines_update_shows_the_new_version_as_a_table(tmp_path: Path) -> None:
    path = tmp_path / "body.json"
    path.write_text(json.dumps({"config": {"datatype": "ImageData", "steps": []}}))
    answer = {
        "id": 5,
        "name": "cars",
        "version": 3,
        "config": {"datatype": "ImageData", "steps": [{"type": "image.blur@v1", "params": {}}]},
    }

    result = pipectl(
        "pipelines",
        "update",
        "5",
        str(path),
        client=client(lambda r: httpx.Response(200, json=answer)),
    )

    assert result.exit_code == 0, result.output
    assert "Version" in result.stdout
    assert "image.blur@v1" in result.stdout


# --- GET /steps -------------------------------------------------------------------------------


STEP = {
    "type": "image.crop@v1",
    "description": "Keep a box.",
    "accepts": "ImageData",
    "params": {
        "type": "object",
        "properties": {"left": {"default": 0}, "width": {}, "clamp": {"default": False}},
        "required": ["width"],
    },
}


@pytest.mark.parametrize("answer", [[STEP], {"items": [STEP]}], ids=["list", "wrapped"])
def test_steps_shows_each_step_with_its_params(answer: Any) -> None:
    result = pipectl("steps", client=client(lambda r: httpx.Response(200, json=answer)))

    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stdout.splitlines() if "image.crop@v1" in line]
    assert "ImageData" in line
    assert "left=0, width (required), clamp=false" in line


def test_steps_json_is_the_apis_catalogue_as_it_is() -> None:
    answer = {"steps": [STEP], "datatypes": []}

    listed = json_of(
        pipectl("steps", "--json", client=client(lambda r: httpx.Response(200, json=answer)))
    )

    assert listed == answer


def test_steps_also_shows_the_data_types_and_what_each_extends() -> None:
    answer = {
        "steps": [STEP],
        "datatypes": [
            {"name": "ImageData", "base": None, "description": "Base.", "fields": []},
            {
                "name": "ImageStats",
                "base": "Notifiable",
                "description": "Figures.",
                "fields": [{"name": "image"}, {"name": "mean_brightness"}],
            },
        ],
    }

    result = pipectl("steps", client=client(lambda r: httpx.Response(200, json=answer)))

    [line] = [line for line in result.stdout.splitlines() if "ImageStats" in line]
    assert "Notifiable" in line
    assert "image, mean_brightness" in line


# --- errors and retries -----------------------------------------------------------------------


def test_an_answer_that_is_not_the_error_shape_still_gives_a_message() -> None:
    error = ApiError.from_response(httpx.Response(502, text="Bad Gateway from the proxy"))

    assert str(error) == "Bad Gateway from the proxy (http_502, HTTP 502)"


def test_a_full_queue_is_waited_out_then_the_file_is_submitted(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(images.jpeg(64, 48))
    answers = [
        httpx.Response(503, json={"error": {"code": "queue_full", "message": "full"}}),
        httpx.Response(202, json={"job_id": job(9)["job_id"], "status": "queued"}),
    ]
    seen: list[httpx.Request] = []

    accepted = client(lambda r: answers.pop(0), seen).submit(path, 1)

    assert accepted["status"] == "queued"
    assert len(seen) == 2
    assert b'name="pipeline_id"' in seen[1].content
    assert b'filename="a.jpg"' in seen[1].content


def test_other_503s_are_not_retried(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(b"x")
    seen: list[httpx.Request] = []
    down = httpx.Response(503, json={"error": {"code": "database_unavailable", "message": "db"}})

    with pytest.raises(ApiError, match="database_unavailable"):
        client(lambda r: down, seen).submit(path, 1)

    assert len(seen) == 1


@pytest.mark.parametrize(
    ("job_body", "text"),
    [
        (job(1, result=None), "no car"),
        (
            job(
                1,
                result={
                    "top_left_x": 1,
                    "top_left_y": 2,
                    "width": 3,
                    "height": 4,
                    "conf": 0.5,
                    "label": 1,
                },
            ),
            "car at (1,2) 3x4, conf 0.50",
        ),
        (job(1, result={"mean_brightness": 12.5}), '{"mean_brightness":12.5}'),
        ({**job(1, "failed"), "error": "step 2 (x@v1): boom"}, "step 2 (x@v1): boom"),
        (job(1, "running"), ""),
    ],
)
def test_a_jobs_outcome_in_a_few_words(job_body: dict[str, Any], text: str) -> None:
    assert result_text(job_body) == text


def test_markup_in_what_the_api_says_is_printed_as_it_is() -> None:
    body = {**job(1, "failed"), "error": "[bold]not bold[/bold] [job=abc]"}

    result = pipectl("job", body["job_id"], client=client(lambda r: httpx.Response(200, json=body)))

    assert "[bold]not bold[/bold] [job=abc]" in result.stdout


# --- what is shown ----------------------------------------------------------------------------


def test_pipelines_list_shows_a_config_in_the_earlier_format() -> None:
    legacy = {
        "id": 9,
        "name": "old",
        "version": 1,
        "config": {
            "datatype": "CarDetection",
            "steps": {
                "1": "ImageHandler",
                "2": "MachineLearningModelRequest",
                "3": "SaveCarDetection",
            },
        },
    }

    result = pipectl(
        "pipelines", "list", client=client(lambda r: httpx.Response(200, json=[legacy]))
    )

    assert result.exit_code == 0, result.output
    assert "ImageHandler → MachineLearningModelRequest → SaveCarDetection" in result.stdout
    shown = pipectl(
        "pipelines", "show", "9", client=client(lambda r: httpx.Response(200, json=legacy))
    )
    assert shown.exit_code == 0, shown.output
    assert "MachineLearningModelRequest" in shown.stdout


def test_job_shows_each_figure_of_a_steps_output_and_a_dash_for_none() -> None:
    step = {"type": "image.fit@v1", "status": "succeeded", "attempts": 1, "duration_ms": 2.0}
    answer = {
        "job_id": "j1",
        "status": "succeeded",
        "steps": [
            {**step, "position": 1, "output": None},
            {
                **step,
                "position": 2,
                "type": "notify.webhook@v1",
                "output": {"status": "failed", "http_status": 503, "attempts": 2, "error": "gone"},
            },
            {**step, "position": 3, "status": "running", "output": None},
        ],
    }

    result = pipectl("job", "j1", client=client(lambda r: httpx.Response(200, json=answer)))

    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "│" in line]
    assert "│ -" in rows[0]  # step 1 reports nothing
    for figure in ("status=failed", "http_status=503", "attempts=2", "error=gone"):
        assert figure in result.stdout

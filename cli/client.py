"""The REST API as the CLI sees it: one method per endpoint, errors as exceptions."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

TERMINAL = ("succeeded", "failed")
PAGE_SIZE = 100


class CliError(Exception):
    """Something the user can act on; the CLI prints it and exits 1."""


class ApiError(CliError):
    """The API answered with an error: `{"error": {"code", "message"}}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} ({self.code}, HTTP {self.status})"

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        try:
            error = response.json()["error"]
            return cls(response.status_code, str(error["code"]), str(error["message"]))
        except (ValueError, KeyError, TypeError):
            text = response.text.strip()[:300] or response.reason_phrase
            return cls(response.status_code, f"http_{response.status_code}", text)


class ApiClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"User-Agent": "pipectl/1"}
        if api_key:
            headers["X-API-Key"] = api_key
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )
        self._sleep = sleep

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach the API at {self.base_url}: {exc}") from exc
        if not response.is_success:
            raise ApiError.from_response(response)
        return response

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(method, path, **kwargs).json()

    # --- jobs ---------------------------------------------------------------------------------

    def submit(self, path: Path, pipeline_id: int, busy_retries: int = 5) -> dict[str, Any]:
        """POST /jobs; a full queue (503 with Retry-After) is waited out a few times."""
        data = path.read_bytes()
        for attempt in range(busy_retries + 1):
            try:
                body: dict[str, Any] = self._request(
                    "POST",
                    "/jobs",
                    files={"image": (path.name, data)},
                    data={"pipeline_id": str(pipeline_id)},
                )
                return body
            except ApiError as exc:
                if exc.status != 503 or exc.code != "queue_full" or attempt == busy_retries:
                    raise
                self._sleep(min(30.0, 2.0 * 2**attempt))
        raise AssertionError("unreachable")

    def job(self, job_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self._request("GET", f"/jobs/{job_id}")
        return body

    def jobs(self, limit: int, **filters: Any) -> Iterator[dict[str, Any]]:
        """GET /jobs, following `next_cursor` until `limit` jobs were given."""
        params = {name: value for name, value in filters.items() if value is not None}
        params = {k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()}
        given = 0
        while given < limit:
            page = self._request(
                "GET", "/jobs", params={**params, "limit": min(PAGE_SIZE, limit - given)}
            )
            for item in page["items"][: limit - given]:
                given += 1
                yield item
            cursor = page.get("next_cursor")
            if not cursor or not page["items"]:
                return
            params["cursor"] = cursor

    def wait(
        self,
        job_ids: list[str],
        timeout: float,
        on_finished: Callable[[dict[str, Any]], None] = lambda job: None,
    ) -> dict[str, dict[str, Any]]:
        """Poll each job until it ends or `timeout` passes; the last answer for each job."""
        latest: dict[str, dict[str, Any]] = {}
        pending = list(job_ids)
        deadline = time.monotonic() + timeout
        interval = 0.1
        while pending:
            for job_id in list(pending):
                latest[job_id] = self.job(job_id)
                if latest[job_id]["status"] in TERMINAL:
                    pending.remove(job_id)
                    on_finished(latest[job_id])
            if not pending or time.monotonic() >= deadline:
                break
            self._sleep(interval)
            interval = min(1.0, interval * 1.5)
        return latest

    # --- pipelines and steps ------------------------------------------------------------------

    def retry(self, job_id: str, *, current_version: bool = False) -> dict[str, Any]:
        """POST /jobs/{id}/retry (`?version=current` to run the pipeline's current version from
        its first step): `{"job_id", "status": "queued"}`."""
        params = {"version": "current"} if current_version else None
        body: dict[str, Any] = self._request("POST", f"/jobs/{job_id}/retry", params=params)
        return body

    def job_image(self, job_id: str, variant: str) -> tuple[bytes, str]:
        """GET /jobs/{id}/image: the image's bytes and content type."""
        response = self._send("GET", f"/jobs/{job_id}/image", params={"variant": variant})
        return response.content, response.headers.get("content-type", "")

    def pipelines(self, archived: bool | None = None) -> list[dict[str, Any]]:
        """GET /pipelines: all, or (archived True / False) only the archived ones / the others."""
        params = {} if archived is None else {"archived": str(archived).lower()}
        body: list[dict[str, Any]] = self._request("GET", "/pipelines", params=params)
        return body

    def pipeline(self, pipeline_id: int) -> dict[str, Any]:
        body: dict[str, Any] = self._request("GET", f"/pipelines/{pipeline_id}")
        return body

    def create_pipeline(self, body: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self._request("POST", "/pipelines", json=body)
        return created

    def update_pipeline(self, pipeline_id: int, body: dict[str, Any]) -> dict[str, Any]:
        updated: dict[str, Any] = self._request("PUT", f"/pipelines/{pipeline_id}", json=body)
        return updated

    def archive_pipeline(self, pipeline_id: int) -> dict[str, Any]:
        """DELETE /pipelines/{id}: the pipeline, archived."""
        archived: dict[str, Any] = self._request("DELETE", f"/pipelines/{pipeline_id}")
        return archived

    def catalogue(self) -> Any:
        """GET /steps: `{"steps": [...], "datatypes": [...]}`."""
        return self._request("GET", "/steps")

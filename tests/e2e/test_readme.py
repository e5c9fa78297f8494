"""The README's examples run as written: every command of a `console` block (a line after `$`),
in order, in one shell, against the test's API, worker and mock.

The documented addresses (the API on 127.0.0.1:8000, a worker's metrics on 127.0.0.1:9808) are
pointed at the test's servers, and pipectl at the test's API through PIPECTL_API_URL; nothing
else of a command changes. curl runs with --fail-with-body, so an HTTP error fails the command
unless the README shows that error as its answer. A shown answer is checked too: JSON has the
top-level keys shown, with the values shown except where `…` stands; a text line's parts
between `…` appear in that order.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import API_PORT, WORKER_METRICS_PORT
from tests.system import BIN, ROOT

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
ELIDED = "…"
CURL_HTTP_ERROR = 22  # curl --fail-with-body on an HTTP status of 400 or more
FENCE = re.compile(r"^```(\S*)")


@dataclass
class Example:
    where: str
    command: str
    shown: list[str] = field(default_factory=list)


def blocks(path: Path) -> list[tuple[int, str, list[str]]]:
    """Every fenced block: (line of its fence, its info string, its lines)."""
    found: list[tuple[int, str, list[str]]] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        opened = FENCE.match(lines[i])
        if opened is None:
            i += 1
            continue
        body, start = [], i
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        found.append((start + 1, opened.group(1), body))
        i += 1
    return found


def examples(path: Path) -> list[Example]:
    """The commands of the `console` blocks, each with the answer shown after it."""
    found: list[Example] = []
    for line_no, info, body in blocks(path):
        if info != "console":
            continue
        continued = False
        for offset, line in enumerate(body, start=1):
            if continued:
                found[-1].command += "\n" + line
            elif line.startswith("$ "):
                where = f"{path.relative_to(ROOT)}:{line_no + offset}"
                found.append(Example(where, line[2:]))
            elif found and line.strip():
                found[-1].shown.append(line)
            continued = line.endswith("\\")
    return found


def top_level(text: str) -> dict[str, str]:
    """The keys of a shown JSON object with the raw text of each value (`…` allowed)."""
    keys: dict[str, str] = {}
    depth, i, key, value_start = 0, 0, None, 0
    while i < len(text):
        char = text[i]
        if char == '"':
            end = i + 1
            while text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            if depth == 1 and key is None and text[end + 1 :].lstrip().startswith(":"):
                key = text[i + 1 : end]
                value_start = text.index(":", end) + 1
            i = end + 1
            continue
        if char in "{[":
            depth += 1
        elif char in "}]" or (char == "," and depth == 1):
            if depth == 1 and key is not None:
                keys[key] = text[value_start:i].strip()
                key = None
            if char != ",":
                depth -= 1
        i += 1
    return keys


def mismatch(shown: list[str], output: str) -> str | None:
    """What in `output` disagrees with the answer the README shows, if anything."""
    text = "\n".join(shown)
    if text.startswith("{"):
        try:
            answer: Any = json.loads(output)
        except ValueError:
            return f"the answer is not JSON: {output[:300]!r}"
        for key, raw in top_level(text).items():
            if key not in answer:
                return f"no {key!r} in {output[:300]!r}"
            if ELIDED in raw:
                continue
            expected = json.loads(raw)
            if not isinstance(expected, dict | list) and answer[key] != expected:
                return f"{key} is {answer[key]!r}, the README shows {expected!r}"
        return None
    for line in shown:
        pattern = ".*".join(re.escape(part) for part in line.split(ELIDED))
        if not re.search(pattern, output):
            return f"nothing like {line!r} in {output[:300]!r}"
    return None


def script(found: list[Example], addresses: dict[str, str]) -> str:
    lines = ["set -o pipefail", 'curl() { command curl --fail-with-body "$@"; }']
    for n, example in enumerate(found):
        command = example.command
        for documented, actual in addresses.items():
            command = command.replace(documented, actual)
        lines += [f"printf '\\n@@start {n}\\n'", command, f"printf '\\n@@end {n} %s\\n' $?"]
    return "\n".join(lines) + "\n"


def run(found: list[Example], workdir: Path) -> dict[int, tuple[int, str]]:
    """Run the examples in one bash; each one's exit status and output (stdout and stderr)."""
    addresses = {
        "http://127.0.0.1:8000": f"http://127.0.0.1:{API_PORT}",
        "http://127.0.0.1:9808": f"http://127.0.0.1:{WORKER_METRICS_PORT}",
    }
    env = {k: v for k, v in os.environ.items() if k not in ("API_KEY", "PIPECTL_API_URL")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PIPECTL_API_URL"] = addresses["http://127.0.0.1:8000"]
    env["COLUMNS"] = "200"
    done = subprocess.run(
        ["bash", "-c", script(found, addresses)],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=600,
        check=False,
    )
    text = done.stdout.decode(errors="replace")
    results: dict[int, tuple[int, str]] = {}
    for match in re.finditer(r"@@start (\d+)\n(.*?)\n@@end \1 (\d+)\n", text, re.DOTALL):
        results[int(match.group(1))] = (int(match.group(3)), match.group(2).strip())
    return results


def test_every_console_example_in_the_docs_runs_as_written(
    api: httpx.Client, tmp_path: Path
) -> None:
    # Given: the tools the examples name, and a folder with the project's samples
    for tool in ("curl", "jq", "sha256sum"):
        assert shutil.which(tool), f"the README's examples need {tool}"
    found = [example for path in DOCUMENTS for example in examples(path)]
    assert len(found) >= 20, [e.where for e in found]
    shutil.copytree(ROOT / "samples", tmp_path / "samples")

    # When
    results = run(found, tmp_path)

    # Then
    problems = []
    for n, example in enumerate(found):
        if n not in results:
            problems.append(f"{example.where}: `{example.command}` did not finish")
            continue
        status, output = results[n]
        error = re.search(r'"error":\{"code":"([a-z_]+)"', "\n".join(example.shown))
        expected_status = CURL_HTTP_ERROR if error else 0
        if status != expected_status:
            problems.append(
                f"{example.where}: `{example.command}` exited {status}: {output[-400:]}"
            )
        elif example.shown and (wrong := mismatch(example.shown, output)):
            problems.append(f"{example.where}: `{example.command}`: {wrong}")
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_that_calls_the_api_is_run_by_the_test(path: Path) -> None:
    for line_no, info, body in blocks(path):
        text = "\n".join(body)
        calls = "127.0.0.1:8000" in text or re.search(r"^\s*(\$ )?pipectl ", text, re.MULTILINE)
        if calls and info in ("", "sh", "bash", "shell"):
            pytest.fail(
                f"{path.name}:{line_no}: a `{info or 'plain'}` block calls the API: "
                "make it `console`, to be run here"
            )

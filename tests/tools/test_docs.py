"""The generated references match the code, and every link between the documents resolves.

No servers: these read files and the code's settings and manifests only.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import Field

from common.pipeline import ImageData, NoOutput, Registry, Step, StepContext, StepManifest
from common.pipeline import StepParams as Params
from common.settings import PROJECT_ROOT, Settings
from tools.docs import generated, main
from tools.docs.configuration import configuration_md, settings_rows
from tools.docs.markdown import anchor
from tools.docs.steps import steps_md

DOCUMENTS = [
    PROJECT_ROOT / "README.md",
    *sorted((PROJECT_ROOT / "docs").glob("*.md")),
    PROJECT_ROOT / "bench" / "HISTORY.md",
]
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#{1,6} (.+)$", re.MULTILINE)


@pytest.mark.parametrize("path", list(generated()), ids=lambda p: p.name)
def test_generated_doc_is_what_make_docs_writes(path: Path) -> None:
    assert path.read_text() == generated()[path], f"{path.name} is out of date: run `make docs`"


def test_check_mode_names_a_stale_file_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given: a copy of the docs with one generated file changed by hand
    stale = tmp_path / "steps.md"
    stale.write_text("edited by hand\n")
    monkeypatch.setattr("tools.docs.generated", lambda: {stale: steps_md()})
    monkeypatch.setattr("tools.docs.PROJECT_ROOT", tmp_path)

    # When / Then
    assert main(["--check"]) == 1
    assert "steps.md" in capsys.readouterr().err
    assert stale.read_text() == "edited by hand\n"
    assert main([]) == 0
    assert stale.read_text() == steps_md()


def test_every_setting_is_documented_with_its_variable_and_default() -> None:
    text = configuration_md()

    for name, info in Settings.model_fields.items():
        assert f"| `{name.upper()}` |" in text
        assert info.description
    assert "| `MAX_UPLOAD_BYTES` | `20971520` |" in text
    assert "| `RECOVERY_GRACE_S` | `60` |" in text
    assert "| `MLMOCK_NULL_RATE` | `0.5` |" in text
    assert "| `WORKER_IO_THREADS` | `16` |" in text  # from the Procfile


def test_a_setting_without_a_description_fails_the_generation() -> None:
    class Undescribed(Settings):
        new_knob: int = 3

    with pytest.raises(ValueError, match="new_knob"):
        settings_rows(Undescribed)


class _EchoParams(Params):
    times: int = Field(2, ge=1, description="How many times.")


class _Echo(Step[ImageData, _EchoParams]):
    manifest = StepManifest(
        type_id="test.echo@v1",
        description="Hands the image on unchanged.",
        accepts=ImageData,
        output=NoOutput,
        params=_EchoParams,
        aliases=("Echo",),
    )

    def run(self, data: ImageData, ctx: StepContext) -> ImageData:
        return data


def test_a_step_is_documented_from_its_manifest() -> None:
    registry = Registry()
    registry.add_datatype(ImageData)
    registry.add_step(_Echo)

    text = steps_md(registry)

    assert "| [`test.echo@v1`](#testechov1) | `ImageData` | Hands the image on unchanged. |" in text
    assert "- Also named: `Echo`" in text
    assert "| `times` | integer (≥ 1) | `2` | How many times. |" in text
    assert "Output: none (`null`)." in text


def test_every_built_in_step_has_its_section() -> None:
    text = (PROJECT_ROOT / "docs" / "steps.md").read_text()

    from common.pipeline import default_registry

    for step in default_registry().steps:
        assert f"### `{step.manifest.type_id}`" in text


def _anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {anchor(re.sub(r"[`*]", "", heading)) for heading in HEADING.findall(text)}


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_every_relative_link_and_anchor_resolves(path: Path) -> None:
    broken = []
    for target in LINK.findall(FENCE.sub("", path.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # http://, mailto: ...
        file, _, fragment = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif fragment and linked.suffix == ".md" and fragment not in _anchors(linked):
            broken.append(f"{target}: no such heading in {linked.name}")
    assert broken == [], f"{path.name}: " + "; ".join(broken)


SNIPPET = re.compile(r"^<!-- from (\S+) -->\n```\w*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_development_walkthrough_shows_code_as_it_is_in_the_files_it_names() -> None:
    text = (PROJECT_ROOT / "docs" / "development.md").read_text()
    snippets = SNIPPET.findall(text)
    assert len(snippets) >= 5

    for source, code in snippets:
        assert code in (PROJECT_ROOT / source).read_text(), f"{source} no longer holds:\n{code}"

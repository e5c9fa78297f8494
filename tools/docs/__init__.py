"""The generated references: docs/configuration.md and docs/steps.md.

    python -m tools.docs           (what `make docs` does: writes the files that changed)
    python -m tools.docs --check   (writes nothing; exit 1, naming the files, if one differs)

configuration.md comes from the settings' `Field(description=...)`, steps.md from the step
registry's manifests; tests/tools/test_docs.py fails when the committed files drift from them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common.settings import PROJECT_ROOT

DOCS = PROJECT_ROOT / "docs"


def generated() -> dict[Path, str]:
    """Each generated file and the text it should hold."""
    from tools.docs.configuration import configuration_md
    from tools.docs.steps import steps_md

    return {DOCS / "configuration.md": configuration_md(), DOCS / "steps.md": steps_md()}


def main(argv: list[str]) -> int:
    """Write (or, with --check, compare) the generated files; 1 if --check found one stale."""
    stale = {
        path: text
        for path, text in generated().items()
        if not (path.exists() and path.read_text() == text)
    }
    names = ", ".join(str(path.relative_to(PROJECT_ROOT)) for path in stale)
    if "--check" in argv:
        if stale:
            print(f"out of date, run `make docs`: {names}", file=sys.stderr)
        return 1 if stale else 0
    for path, text in stale.items():
        path.write_text(text)
    print(f"wrote {names}" if stale else "docs/ is up to date")
    return 0

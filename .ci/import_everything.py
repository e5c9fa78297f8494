"""Import every module the project installs, and the ones its dependencies load by name at run
time (the broker transport, uvicorn's fast loops), with the interpreter it runs under.

Run by .ci/production-smoke in the production venv, from a folder outside the clone, so that a
module comes from what `pip install .` put in site-packages, never from the work tree. Exits 1,
naming each module that failed and why, if any did.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback

PACKAGES = ("api", "worker", "common", "mlmock", "cli")
# Loaded by name from a URL or a command line, so no import of ours names them.
LOADED_BY_NAME = (
    "kombu.transport.redis",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.httptools_impl",
    "psycopg",
)


def modules() -> list[str]:
    """Every module of our packages but the Alembic revisions and env (run only by Alembic) and
    `__main__` (runs the CLI on import)."""
    names: list[str] = []
    for top in PACKAGES:
        package = importlib.import_module(top)
        names.append(top)
        for info in pkgutil.walk_packages(package.__path__, f"{top}."):
            if not info.name.startswith("common.migrations") and not info.name.endswith("__main__"):
                names.append(info.name)
    return names


def main() -> int:
    failed: list[str] = []
    names = [*modules(), *LOADED_BY_NAME]
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001  (any failure to import is the finding)
            failed.append(f"{name}:\n{traceback.format_exc()}")
    for failure in failed:
        print(f"error: cannot import {failure}", file=sys.stderr)
    print(f"imported {len(names) - len(failed)} of {len(names)} modules with {sys.executable}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

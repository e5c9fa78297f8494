"""Log format shared by every process; records carry the job id when there is one."""

from __future__ import annotations

import logging
from contextvars import ContextVar

job_id_var: ContextVar[str | None] = ContextVar("job_id", default=None)

FORMAT = "%(asctime)s %(levelname)-7s %(name)s [job=%(job_id)s] %(message)s"


class JobIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "job_id"):
            record.job_id = job_id_var.get() or "-"
        return True


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(JobIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())

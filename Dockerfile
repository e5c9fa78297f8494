# One image for every Python service (api, worker, flower, mlmock, prestart);
# docker-compose.yml picks the process with `command:`.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATA_DIR=/app/var

WORKDIR /app

# Dependencies first, pinned by requirements.lock (`make lock` writes it from pyproject.toml),
# so that two builds get the same packages and a code change does not reinstall them (this
# layer is rebuilt only when the lock changes).
COPY requirements.lock ./
RUN pip install -r requirements.lock

# The project itself (Alembic's migrations ship inside the common package).
COPY pyproject.toml README.md alembic.ini ./
COPY samples/ samples/
COPY common/ common/
COPY api/ api/
COPY worker/ worker/
COPY mlmock/ mlmock/
COPY cli/ cli/
# --no-deps: the lock gave every dependency; pip check fails the build if it missed one.
RUN pip install --no-deps . \
    && pip check \
    && rm -rf build ./*.egg-info

RUN useradd --create-home --uid 10001 --user-group app \
    && mkdir -p "$DATA_DIR" \
    && chown app:app "$DATA_DIR"
USER app

EXPOSE 8000
CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]

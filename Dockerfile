# One image for every Python service (api, worker, flower, mlmock, prestart);
# docker-compose.yml picks the process with `command:`.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATA_DIR=/app/var

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so that a code change does not
# reinstall them (this layer is rebuilt only when pyproject.toml changes).
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('/tmp/requirements.txt', 'w').write('\n'.join(deps) + '\n')" \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The project itself (Alembic's migrations ship inside the common package).
COPY README.md alembic.ini ./
COPY samples/ samples/
COPY common/ common/
COPY api/ api/
COPY worker/ worker/
COPY mlmock/ mlmock/
COPY cli/ cli/
RUN pip install --no-deps . \
    && rm -rf build ./*.egg-info

RUN useradd --create-home --uid 10001 --user-group app \
    && mkdir -p "$DATA_DIR" \
    && chown app:app "$DATA_DIR"
USER app

EXPOSE 8000
CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]

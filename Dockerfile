# One image for every app service (api, worker, migrate, sandbox); compose picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The pinned dependencies first, in their own layer, so a code change doesn't reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the project itself (alembic.ini and migrations/ included, for the migrate service).
COPY . .
# Bytecode compiled here (PYTHONDONTWRITEBYTECODE stops imports from writing it): the workflow sandbox imports a
# workflow's module for every run, and without bytecode compiles its source every time (worker.py).
RUN pip install --no-deps . \
    && python -m compileall -q workflows activities api core domain models \
    && useradd --system --uid 10001 --no-create-home backoffice \
    && install -d -o backoffice /backups

USER backoffice

# api, sandbox, worker metrics
EXPOSE 8000 8100 9464
# The API (api/serve.py): WEB_CONCURRENCY processes, 1 unless set.
CMD ["python", "-m", "api.serve", "--host", "0.0.0.0", "--port", "8000"]

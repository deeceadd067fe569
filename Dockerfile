# The dashboard in a container: `docker compose up` serves it on 127.0.0.1:8000.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OPENBLAS_NUM_THREADS=1 \
    OMP_NUM_THREADS=1 \
    DROPVIZ_STATE_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY backend ./backend
COPY frontend ./frontend
# The README's install command, editable so the server finds frontend/ beside
# backend/. /data belongs to the server's user before the volume mounts it,
# so a new named volume starts with that owner.
RUN pip install --no-cache-dir -e . \
    && useradd --create-home --uid 10001 dropviz \
    && mkdir /data \
    && chown dropviz:dropviz /data
USER dropviz
VOLUME ["/data"]

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=3)"]
# Inside the container the server must listen on every interface so the
# published port reaches it; docker-compose.yml publishes it on the host's
# 127.0.0.1 only. SIGTERM (docker stop) halts training runs as interrupted
# and writes their checkpoints before the process exits.
CMD ["dropviz", "serve", "--host", "0.0.0.0", "--port", "8000"]

# The exporter's image, also used by the compose stack's demo fleet and webhook sink.
#   docker build -t agency-telemetry .
#   docker run -p 9477:9477 agency-telemetry        # agency-telemetry serve --listen 0.0.0.0:9477
# Pinned like the stack's other images; bump it on purpose (Python patch releases, Debian fixes).
FROM python:3.11.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The package first, so editing deploy/ does not reinstall it.
COPY pyproject.toml README.md /src/
COPY exporter /src/exporter
RUN pip install /src && rm -rf /src

# The compose stack's demo fleet and notification sink (see docker-compose.yml).
COPY deploy/fleet.py deploy/sink.py /app/

RUN groupadd --system --gid 10001 agency \
    && useradd --system --uid 10001 --gid agency --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin agency
# persistence.file's directory, owned by the exporter's user: a named volume mounted here starts
# with this ownership (see docker-compose.yml).
RUN mkdir -p /var/lib/agency-telemetry && chown 10001:10001 /var/lib/agency-telemetry
USER 10001:10001
WORKDIR /app

EXPOSE 9477
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9477/healthz', timeout=2)"]
CMD ["agency-telemetry", "serve", "--listen", "0.0.0.0:9477"]

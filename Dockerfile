# syntax=docker/dockerfile:1
# One image for the probe exporter (`status-exporter`) and the status page (`status-page`);
# docker-compose.yml picks the command. Python matches the version the tests run on.

FROM python:3.11.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
COPY statuspage ./statuspage
COPY statuslog ./statuslog
COPY simulation ./simulation
RUN python -m venv /opt/sefaria-status \
    && /opt/sefaria-status/bin/pip install .

FROM python:3.11.11-slim-bookworm
COPY --from=build /opt/sefaria-status /opt/sefaria-status
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin status \
    && install -d -o 10001 -g 10001 /var/lib/sefaria-status
ENV PATH=/opt/sefaria-status/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HEALTHCHECK_URL=http://127.0.0.1:9115/-/healthy
USER 10001:10001
EXPOSE 9115 8080
# Both programs serve /-/healthy; HEALTHCHECK_URL says on which port (compose sets it).
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['HEALTHCHECK_URL'], timeout=4)"]
CMD ["status-exporter", "--config.file=/etc/sefaria-status/services.yml", "--web.listen-address=0.0.0.0:9115"]

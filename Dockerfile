# Crossroads as a container image: `docker build -t crossroads .`, then `docker run -p 8000:8000 crossroads`
# (or `docker compose up` with compose.yaml: PostgreSQL and Redis beside it). Several hosts behind a load
# balancer: deploy/README.md.

FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /opt/crossroads && /opt/crossroads/bin/pip install --no-cache-dir .

FROM python:3.12-slim
# A user of its own, without a login shell: the gateway never needs root.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/crossroads --create-home \
        --shell /usr/sbin/nologin crossroads
COPY --from=build /opt/crossroads /opt/crossroads
# Listen on every interface of the container; keep the SQLite file (when no PostgreSQL is given) and the
# spool in the one volume, so a restarted container ships what its predecessor spooled.
ENV PATH=/opt/crossroads/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CROSSROADS_HOST=0.0.0.0 \
    CROSSROADS_PORT=8000 \
    CROSSROADS_DATABASE_URL=sqlite:////var/lib/crossroads/crossroads.db \
    CROSSROADS_SPOOL_DIR=/var/lib/crossroads/spool
USER crossroads:crossroads
WORKDIR /var/lib/crossroads
VOLUME ["/var/lib/crossroads"]
EXPOSE 8000
# The slim image has no curl: the check is a line of Python against the gateway's /health.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('CROSSROADS_PORT', '8000'), timeout=4)"]
# SIGTERM (docker stop) shuts down in order: requests in flight finish, the shipper stores what was spooled.
STOPSIGNAL SIGTERM
ENTRYPOINT ["crossroads"]
CMD ["serve"]

# searchsvc: the built wheel (not an editable install), run as a non-root user, data on a volume.
#   docker build -t searchsvc . && docker run -p 8000:8000 -v searchsvc-data:/data searchsvc
# CI cannot run a Docker engine here: it checks .dockerignore and runs the same install steps
# (.ci/install-wheel on the built wheel) in a fresh venv, then uses the install (.ci/smoke-wheel).

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY searchsvc ./searchsvc
COPY ingest ./ingest
COPY migrations ./migrations
RUN python -m pip wheel --no-cache-dir --no-deps -w /dist .

FROM python:3.11-slim
COPY --from=build /dist /dist
COPY .ci/install-wheel /usr/local/bin/install-wheel
RUN install-wheel /dist/searchsvc-*.whl python && rm -rf /dist \
 && useradd --create-home --uid 10001 searchsvc && mkdir /data && chown searchsvc /data

USER searchsvc
ENV SEARCHSVC_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["searchsvc", "serve", "--host", "0.0.0.0", "--port", "8000"]

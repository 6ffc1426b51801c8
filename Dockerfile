# The sysevents REST API: `docker build -t sysevents .` then see compose.yaml.
# Stage 1 builds the wheel; stage 2 installs it with the server's extras and
# runs as an unprivileged user.

FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
COPY migrations ./migrations
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.12-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 sysevents
COPY --from=build /wheels /wheels
RUN pip install "$(ls /wheels/sysevents-*.whl)[server,postgres,redis,otlp]" && rm -rf /wheels
USER sysevents
WORKDIR /home/sysevents
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=2).status != 200)"]
CMD ["sysevents", "serve", "--host", "0.0.0.0", "--port", "8000"]

# syntax=docker/dockerfile:1
# Two images from one file (docs/deployment.md, "Containers"):
#   docker build --target serve -t annae:serve .   the lean serving image (no torch)
#   docker build --target train -t annae:train .   serving + torch CPU and the MiniLM encoder
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 ANNAE_HOME=/data
# pg_dump/pg_restore for `annae backup` / `annae restore` on PostgreSQL
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data annae \
    && mkdir -p /data /backups && chown annae:annae /data /backups

FROM base AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY annae ./annae
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM base AS serve
COPY --from=build /wheels /wheels
RUN pip install /wheels/annae-*.whl
COPY deploy/container/entrypoint.sh /usr/local/bin/annae-entrypoint
USER annae
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"
ENTRYPOINT ["annae-entrypoint"]
CMD ["serve"]

FROM serve AS train
USER root
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu \
    "$(ls /wheels/annae-*.whl)[train]"
USER annae

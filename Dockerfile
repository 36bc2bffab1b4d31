# The tidemark services (processor worker, mirror appliers) for docker-compose.yml.
FROM python:3.11-slim-bookworm

# NBD clients and tools used by the trackers, mounts and verification.
RUN apt-get update \
    && apt-get install -y --no-install-recommends qemu-utils libnbd-bin nbdkit e2fsprogs kcat \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/tidemark
COPY pyproject.toml setup.py README.md ./
COPY tidemark ./tidemark
COPY producers ./producers
COPY processors ./processors
COPY sinks ./sinks
COPY schemas ./schemas
RUN pip install --no-cache-dir .

ENV TIDEMARK_STATE_DIR=/var/lib/tidemark
VOLUME ["/var/lib/tidemark"]
WORKDIR /var/lib/tidemark
ENTRYPOINT ["tidemark"]
CMD ["--help"]

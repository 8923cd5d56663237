# populator in a container: one shard of a backfill per container (AWS Batch array jobs,
# Kubernetes Indexed Jobs; see examples/ and "Running on many machines" in the README).
#
#   docker build -t populator .
#   docker run --rm populator run --help
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY pyproject.toml README.md /tmp/populator/
COPY populator /tmp/populator/populator
RUN pip install /tmp/populator && rm -rf /tmp/populator

# A fixed numeric uid, so Kubernetes' runAsNonRoot can check it.
RUN groupadd --gid 10001 populator && useradd --uid 10001 --gid 10001 --create-home populator
USER 10001:10001
# Checkpoints go to .populator/ here; mount a volume on /home/populator/.populator to keep them.
WORKDIR /home/populator

ENTRYPOINT ["populator"]
CMD ["--help"]

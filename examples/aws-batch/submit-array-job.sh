#!/usr/bin/env bash
# Submit a backfill as one AWS Batch array job of N children. Child i runs
# `populator run ARCHIVE ... --shard auto/N` and takes i from AWS_BATCH_JOB_ARRAY_INDEX, so the N
# children together read every object of the archive once.
#
#   examples/aws-batch/submit-array-job.sh s3://acme/enriched/archive/ 8 --since 2026-06-01
#
# Arguments: the archive, N (2 to 10000, AWS Batch's array sizes), then any other
# `populator run` options. Environment:
#   JOB_QUEUE          Batch job queue (default: populator)
#   JOB_DEFINITION     registered job definition (default: populator-backfill, job-definition.json)
#   FLEET_WRITE_RATE   items/s for the N children together; each gets a 1/N share as its
#                      --max-write-rate (default: no ceiling but the table's capacity)
#   CAPACITY_PERCENT   share of a provisioned table's write capacity for the N children together;
#                      each gets a 1/N share as its --write-capacity-percent (default: 50)
#   PROCESSES          worker processes in each child: the job definition's vCPUs (default: 2)
set -euo pipefail

usage="usage: $0 s3://bucket/prefix/ SHARDS [populator run options...]"
archive=${1:?$usage}
shards=${2:?$usage}
shift 2
if ! [[ $shards =~ ^[0-9]+$ ]] || ((shards < 2 || shards > 10000)); then
  echo "SHARDS must be a whole number from 2 to 10000 (an AWS Batch array size)." >&2
  echo "On one machine, run populator without --shard." >&2
  exit 2
fi

share() { awk -v total="$1" -v n="$shards" 'BEGIN { printf "%.4g", total / n }'; }
percent=$(share "${CAPACITY_PERCENT:-50}")
if awk -v p="$percent" 'BEGIN { exit !(p < 1) }'; then
  echo "CAPACITY_PERCENT / SHARDS is $percent %, below populator's floor of 1 %: raise" >&2
  echo "CAPACITY_PERCENT to at least SHARDS ($shards), or use fewer shards." >&2
  exit 2
fi
options=(--shard "auto/$shards" --write-capacity-percent "$percent" --processes "${PROCESSES:-2}" --quiet)
if [[ -n ${FLEET_WRITE_RATE:-} ]]; then
  options+=(--max-write-rate "$(share "$FLEET_WRITE_RATE")")
fi

# The container's command: the image's entry point is `populator`. This replaces the job
# definition's own command (which is what a submission from the console runs).
overrides=$(python3 -c 'import json, sys; print(json.dumps({"command": sys.argv[1:]}))' \
  run "$archive" /config/dynamodb.json /config/iglu_resolver.json "${options[@]}" "$@")

aws batch submit-job \
  --job-name "populator-$(date -u +%Y%m%d-%H%M%S)" \
  --job-queue "${JOB_QUEUE:-populator}" \
  --job-definition "${JOB_DEFINITION:-populator-backfill}" \
  --array-properties "size=$shards" \
  --container-overrides "$overrides" \
  --query jobId --output text

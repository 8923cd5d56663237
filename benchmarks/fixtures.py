"""What every measurement shares: the cached archives, the two config files, the child environment.

Archives come from `populator.samples.archive.write_archive` with a fixed `now`, so a spec always yields
the same bytes; they are cached under `benchmarks/out/archives/<key>/`, keyed by the spec and by
the generator's source (every module of `populator/samples/`), because generating 200k events
takes longer than measuring them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from populator import samples
from populator.samples.archive import SampleSpec, write_archive

from . import varied
from .endpoint import keys_digest

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "benchmarks" / "out"
TABLE = "bench-event-manifest"
# A fixed "today" makes archives reproducible. populator is always run with --include-expired,
# so the date the benchmark runs on never changes what gets written.
NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
STORAGE_2_0_0 = "iglu:com.snowplowanalytics.snowplow.storage/amazon_dynamodb_config/jsonschema/2-0-0"


@dataclass(frozen=True)
class Archive:
    """A generated archive on disk and what a correct run over it must produce."""

    root: Path
    parts: list[Path]  # in listing order
    lines: int  # every line of every part
    distinct_keys: int
    keys_digest: str  # see endpoint.keys_digest


def benchmark_spec(parts: int, events_per_part: int) -> SampleSpec:
    """Realistic ~1.1 KB events in gzip parts of one run; no markers, bad or expired lines, and
    every event with a fingerprint (each line an item: the write rows compare items per second)."""
    return SampleSpec(
        runs=1,
        parts_per_run=parts,
        events_per_part=events_per_part,
        now=NOW,
        expired_runs=0,
        bad_lines_per_part=0,
        blank_lines_per_part=0,
        no_fingerprint_share=0.0,
        formats=("gz",),
        markers=False,
    )


def ensure_archive(spec: SampleSpec, out_dir: Path = OUT_DIR) -> Archive:
    """The archive for `spec`, generated on first use and read from the cache afterwards."""
    directory = out_dir / "archives" / _cache_key(spec)
    manifest_path = directory / "expected.json"
    if not manifest_path.exists():
        _generate(spec, directory)
    expected = json.loads(manifest_path.read_text())
    root = directory / "archive"
    return Archive(
        root=root,
        parts=[root / name for name in expected["objects"]],
        lines=expected["lines"],
        distinct_keys=expected["distinct_keys"],
        keys_digest=expected["keys_digest"],
    )


def _cache_key(spec: SampleSpec) -> str:
    fields = {k: str(v) for k, v in dataclasses.asdict(spec).items()}
    source = b"".join(path.read_bytes() for path in sorted(Path(samples.__file__).parent.glob("*.py")))
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode() + source).hexdigest()[:12]
    return f"{spec.parts_per_run}x{spec.events_per_part}-{digest}"


def _generate(spec: SampleSpec, directory: Path) -> None:
    """Write into a scratch folder and rename, so an interrupted generation is never reused."""
    scratch = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(scratch, ignore_errors=True)
    expected = write_archive(scratch / "archive", spec)
    summary = {
        "lines": expected.lines,
        "objects": expected.objects,
        "distinct_keys": len(expected.items),
        "keys_digest": keys_digest(expected.items),
    }
    (scratch / "expected.json").write_text(json.dumps(summary, indent=1))
    shutil.rmtree(directory, ignore_errors=True)
    scratch.rename(directory)


def ensure_varied_archive(
    name: str, profiles: tuple[varied.Profile, ...], out_dir: Path = OUT_DIR
) -> Archive:
    """An archive of `benchmarks/varied.py` (one part per profile), cached as `ensure_archive`
    caches its own: keyed by the profiles and that generator's source."""
    fields = json.dumps([dataclasses.asdict(profile) for profile in profiles], sort_keys=True)
    digest = hashlib.sha256(fields.encode() + Path(varied.__file__).read_bytes()).hexdigest()[:12]
    directory = out_dir / "archives" / f"{name}-{len(profiles)}-{digest}"
    manifest_path = directory / "expected.json"
    if not manifest_path.exists():
        scratch = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(scratch, ignore_errors=True)
        expected, keys = varied.write_archive(scratch / "archive", profiles)
        summary = {**dataclasses.asdict(expected), "keys_digest": keys_digest(keys)}
        (scratch / "expected.json").write_text(json.dumps(summary, indent=1))
        shutil.rmtree(directory, ignore_errors=True)
        scratch.rename(directory)
    expected = json.loads(manifest_path.read_text())
    root = directory / "archive"
    return Archive(
        root=root,
        parts=[root / name for name in expected["objects"]],
        lines=expected["lines"],
        distinct_keys=expected["distinct_keys"],
        keys_digest=expected["keys_digest"],
    )


def write_configs(directory: Path) -> tuple[Path, Path]:
    """The storage config (2-0-0, default credential chain) and the resolver config files."""
    directory.mkdir(parents=True, exist_ok=True)
    storage = directory / "dynamodb.json"
    resolver = directory / "iglu_resolver.json"
    storage.write_text(json.dumps(_storage_config()))
    resolver.write_text(json.dumps(resolver_config()))
    return storage, resolver


def _storage_config() -> dict[str, Any]:
    return {
        "schema": STORAGE_2_0_0,
        "data": {
            "name": "benchmark manifest",
            "auth": None,
            "awsRegion": "us-east-1",
            "dynamodbTable": TABLE,
            "id": "5d1f3c2a-8b7e-4f60-9a1d-0c2b3e4f5a6b",
            "purpose": "EVENTS_MANIFEST",
        },
    }


# Only if the test helpers cannot be imported: a resolver with no repository, which needs no
# network (the demo's points at Iglu Central over HTTP, and a benchmark must not depend on that).
OFFLINE_RESOLVER = {
    "schema": "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-1",
    "data": {"cacheSize": 500, "repositories": []},
}


def resolver_config() -> dict[str, Any]:
    """The resolver the test suite uses (an embedded repository, kept valid there)."""
    try:
        from tests.support.backfill_helpers import RESOLVER
    except ImportError:
        return OFFLINE_RESOLVER
    return dict(RESOLVER)


def child_env(endpoint_url: str | None) -> dict[str, str]:
    """This environment without any real AWS setting, plus fake keys and the endpoint.

    Real credentials, profiles and config files are dropped so nothing can reach AWS, and the
    instance-metadata lookup is off so no child waits on a timeout. `PYTHONPATH` puts this
    checkout first, so `python -m populator` runs the code next to the benchmark even from
    another working directory.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(OUT_DIR / "no-such-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(OUT_DIR / "no-such-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        NO_COLOR="1",
    )
    if endpoint_url:
        env["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint_url
    return env

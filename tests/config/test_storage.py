"""Storage config: every supported version, validation through the resolver's repositories,
the errors a user can make (each a one-paragraph ConfigError, exit 2 through the CLI), and secrets
that never show. HTTP repositories are real servers on loopback ports; the CLI runs in a
subprocess whose AWS endpoint leads nowhere, so any AWS call would fail loudly."""

from __future__ import annotations

import copy
import json
import logging
import os
from pathlib import Path

import pytest

from populator.config import iglu_http
from populator.config.iglu import BUNDLED, BUNDLED_REGISTRY_PATH, SchemaKey, bundled_schema
from populator.config.storage import (
    STORAGE_SCHEMA_PREFIX,
    AwsKeys,
    Secret,
    StorageConfig,
    load_resolver_config,
    load_storage_config,
)
from populator.errors import ConfigError
from tests.support.backfill_helpers import run_populator
from tests.support.iglu_server import IgluServer, make_registry

FAKE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzz-SECRET-DO-NOT-LEAK"
FAKE_KEY_ID = "AKIAFAKEKEYID0009876"
UUID = "2b4b4b3e-6b0a-4c39-b2f0-6a4f5f2b7a10"
RESOLVER_SCHEMA = "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-2"
CLOSED_PORT_URI = "http://127.0.0.1:9"


def storage_data(version: str, **changes) -> dict:
    if version == "2-0-0":
        data = {
            "name": "manifest",
            "auth": {"accessKeyId": FAKE_KEY_ID, "secretAccessKey": FAKE_SECRET},
            "awsRegion": "eu-west-1",
            "dynamodbTable": "snowplow-event-manifest",
            "id": UUID,
            "purpose": "EVENTS_MANIFEST",
        }
    else:
        data = {
            "name": "manifest",
            "accessKeyId": FAKE_KEY_ID,
            "secretAccessKey": FAKE_SECRET,
            "awsRegion": "eu-west-1",
            "dynamodbTable": "snowplow-event-manifest",
            "purpose": "DUPLICATE_TRACKING",
        }
    data |= changes
    return {k: v for k, v in data.items() if v is not _DROP}


_DROP = object()


def write_storage(directory: Path, version: str = "2-0-0", name: str = "storage.json", **changes) -> Path:
    path = directory / name
    path.write_text(
        json.dumps({"schema": STORAGE_SCHEMA_PREFIX + version, "data": storage_data(version, **changes)})
    )
    return path


def write_resolver(directory: Path, *repositories: dict) -> Path:
    path = directory / "iglu_resolver.json"
    path.write_text(
        json.dumps(
            {"schema": RESOLVER_SCHEMA, "data": {"cacheSize": 500, "repositories": list(repositories)}}
        )
    )
    return path


def http_repo(name: str, uri: str, priority: int = 0) -> dict:
    return {
        "name": name,
        "priority": priority,
        "vendorPrefixes": ["com.snowplowanalytics"],
        "connection": {"http": {"uri": uri}},
    }


def embedded_repo(name: str, path: Path, priority: int = 0) -> dict:
    return {
        "name": name,
        "priority": priority,
        "vendorPrefixes": ["com.snowplowanalytics"],
        "connection": {"embedded": {"path": str(path)}},
    }


def stricter_registry(root: Path) -> Path:
    """A registry whose 2-0-0 requires the table name to start with `prod-`."""
    key = SchemaKey.parse(STORAGE_SCHEMA_PREFIX + "2-0-0")
    schema = copy.deepcopy(bundled_schema(key))
    schema["properties"]["dynamodbTable"] |= {"pattern": "^prod-", "minLength": 8}
    return make_registry(root, schemas={key.path: schema})


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    monkeypatch.setattr(iglu_http, "HTTP_BACKOFF", 0.0)


@pytest.fixture
def local_resolver(tmp_path) -> Path:
    """A resolver whose one repository is the bundled schemas, embedded: offline, no warning."""
    return write_resolver(tmp_path, embedded_repo("bundled", BUNDLED_REGISTRY_PATH))


def load(storage: Path, resolver: Path) -> StorageConfig:
    return load_storage_config(storage, load_resolver_config(resolver))


def config_error(storage: Path, resolver: Path) -> str:
    with pytest.raises(ConfigError) as raised:
        load(storage, resolver)
    message = str(raised.value)
    assert FAKE_SECRET not in message and FAKE_KEY_ID not in message
    assert "\n" not in message
    return message


# --- versions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1-0-0", "1-0-1", "2-0-0"])
def test_every_supported_version_with_keys(tmp_path, local_resolver, version):
    config = load(write_storage(tmp_path, version), local_resolver)
    assert config == StorageConfig(
        schema=STORAGE_SCHEMA_PREFIX + version,
        name="manifest",
        table="snowplow-event-manifest",
        region="eu-west-1",
        keys=AwsKeys(FAKE_KEY_ID, Secret(FAKE_SECRET)),
        schema_source="bundled",
    )
    assert config.keys.secret_access_key.reveal() == FAKE_SECRET
    assert config.keys.hint == "access key ending in 9876"
    for shown in (repr(config), str(config), repr(config.keys), str(config.keys.secret_access_key)):
        assert FAKE_SECRET not in shown
        assert FAKE_KEY_ID not in shown  # at most the last 4 characters of the key id


def test_1_0_1_accepts_an_optional_id(tmp_path, local_resolver):
    assert load(write_storage(tmp_path, "1-0-1", id=UUID), local_resolver).table == "snowplow-event-manifest"


def test_2_0_0_with_null_auth_uses_the_default_chain(tmp_path, local_resolver):
    assert load(write_storage(tmp_path, "2-0-0", auth=None), local_resolver).keys is None


def test_without_a_resolver_the_bundled_schema_is_used(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="populator"):
        config = load_storage_config(write_storage(tmp_path, "2-0-0", auth=None))
    assert config.schema_source == BUNDLED
    assert caplog.records == []


# --- schemas come from the resolver's repositories ------------------------------------------


def test_a_stricter_schema_from_an_http_repository_is_the_one_used(tmp_path, local_resolver):
    storage = write_storage(tmp_path, "2-0-0")
    assert load(storage, local_resolver).table == "snowplow-event-manifest"  # valid per Snowplow's schema
    with IgluServer(stricter_registry(tmp_path / "registry")) as server:
        resolver = write_resolver(tmp_path, http_repo("company registry", server.url))
        message = config_error(storage, resolver)
    assert message.startswith("storage.json: data.dynamodbTable: must match the pattern ^prod-")
    assert "from repository 'company registry'" in message
    assert server.paths() == [f"/schemas/{STORAGE_SCHEMA_PREFIX[len('iglu:') :]}2-0-0"]


def test_a_stricter_schema_from_an_embedded_repository_is_the_one_used(tmp_path):
    storage = write_storage(tmp_path, "2-0-0", dynamodbTable="prod")
    resolver = write_resolver(tmp_path, embedded_repo("local", stricter_registry(tmp_path / "registry")))
    message = config_error(storage, resolver)
    assert (
        "storage.json: data.dynamodbTable: must match the pattern ^prod-; "
        "data.dynamodbTable: must be at least 8 characters long"
    ) in message


def test_a_repository_that_answers_wins_over_the_bundled_copy(tmp_path, caplog):
    with IgluServer(make_registry(tmp_path / "registry")) as server:
        resolver = write_resolver(tmp_path, http_repo("Iglu Central mirror", server.url))
        with caplog.at_level(logging.WARNING, logger="populator"):
            config = load(write_storage(tmp_path, "1-0-0"), resolver)
    assert config.schema_source == "Iglu Central mirror"
    assert caplog.records == []


def test_an_unreachable_repository_falls_back_with_one_warning(tmp_path, caplog):
    resolver = write_resolver(tmp_path, http_repo("Iglu Central", CLOSED_PORT_URI))
    with caplog.at_level(logging.WARNING, logger="populator"):
        config = load(write_storage(tmp_path, "2-0-0"), resolver)
    assert config.schema_source == BUNDLED
    [record] = caplog.records
    assert "'Iglu Central' (http://127.0.0.1:9): connection refused" in record.getMessage()
    assert FAKE_SECRET not in caplog.text


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "changes", "expected"),
    [
        ("2-0-0", {"dynamodbTable": _DROP}, "storage.json: data.dynamodbTable: required property is missing"),
        ("2-0-0", {"awsRegion": 5}, "storage.json: data.awsRegion: must be a string (found an integer)"),
        (
            "1-0-0",
            {"awsRegion": ["eu-west-1"]},
            "storage.json: data.awsRegion: must be a string (found an array)",
        ),
        (
            "2-0-0",
            {"auth": {"accessKeyId": FAKE_KEY_ID}},
            "storage.json: data.auth.secretAccessKey: required property is missing",
        ),
        (
            "2-0-0",
            {"auth": {"secretAccessKey": FAKE_SECRET}},
            "storage.json: data.auth.accessKeyId: required property is missing",
        ),
        (
            "2-0-0",
            {"auth": FAKE_SECRET},
            "storage.json: data.auth: must be an object or null (found a string)",
        ),
        ("2-0-0", {"auth": _DROP}, "storage.json: data.auth: required property is missing"),
        ("2-0-0", {"id": FAKE_SECRET}, "storage.json: data.id: must be a valid uuid"),
        ("2-0-0", {"id": _DROP}, "storage.json: data.id: required property is missing"),
        ("2-0-0", {"purpose": FAKE_SECRET}, 'storage.json: data.purpose: must be "EVENTS_MANIFEST"'),
        ("1-0-0", {"purpose": "EVENTS_MANIFEST"}, 'storage.json: data.purpose: must be "DUPLICATE_TRACKING"'),
        ("1-0-0", {"id": UUID}, "storage.json: data.id: property is not allowed"),
        ("1-0-1", {"id": "not-a-uuid"}, "storage.json: data.id: must be a valid uuid"),
        (
            "1-0-0",
            {"secretAccessKey": _DROP},
            "storage.json: data.secretAccessKey: required property is missing",
        ),
        ("1-0-0", {"secretAccessKey": 12345}, "storage.json: data.secretAccessKey: must be a string"),
        ("2-0-0", {"dynamodbTable": ""}, "storage.json: data.dynamodbTable: must not be empty"),
        ("2-0-0", {"region": "eu-west-1"}, "storage.json: data.region: property is not allowed"),
    ],
)
def test_validation_errors_name_file_path_and_rule(tmp_path, local_resolver, version, changes, expected):
    message = config_error(write_storage(tmp_path, version, **changes), local_resolver)
    assert message.startswith(expected), message


def test_every_problem_is_listed_in_one_paragraph(tmp_path, local_resolver):
    storage = write_storage(tmp_path, "2-0-0", dynamodbTable=_DROP, awsRegion=None, purpose="x")
    message = config_error(storage, local_resolver)
    assert message == (
        "storage.json: data.awsRegion: must be a string (found null); "
        'data.purpose: must be "EVENTS_MANIFEST"; data.dynamodbTable: required property is missing '
        f"(schema {STORAGE_SCHEMA_PREFIX}2-0-0 from repository 'bundled')."
    )


def test_missing_file(tmp_path, local_resolver):
    message = config_error(tmp_path / "nope.json", local_resolver)
    assert message == f"STORAGE_CONFIG {str(tmp_path / 'nope.json')!r} does not exist."


def test_not_json_names_file_and_position(tmp_path, local_resolver):
    storage = tmp_path / "storage.json"
    storage.write_text('{"schema": "iglu:x",\n  "data": {"secretAccessKey": "' + FAKE_SECRET + '",}}')
    message = config_error(storage, local_resolver)
    assert message.startswith("STORAGE_CONFIG storage.json is not valid JSON")
    assert "line 2, column" in message


@pytest.mark.parametrize(
    "document", [{"data": {}}, {"schema": STORAGE_SCHEMA_PREFIX + "2-0-0"}, [1, 2], {"dynamodbTable": "t"}]
)
def test_not_self_describing(tmp_path, local_resolver, document):
    storage = tmp_path / "storage.json"
    storage.write_text(json.dumps(document))
    assert config_error(storage, local_resolver).startswith(
        'storage.json is not a self-describing JSON: it needs a "schema" '
        f'({STORAGE_SCHEMA_PREFIX}<version>) and a "data" object'
    )


def test_schema_that_is_not_an_iglu_uri(tmp_path, local_resolver):
    storage = tmp_path / "storage.json"
    storage.write_text(json.dumps({"schema": "amazon_dynamodb_config/2-0-0", "data": {}}))
    assert config_error(storage, local_resolver) == (
        f'storage.json: "schema" must be an Iglu URI such as {STORAGE_SCHEMA_PREFIX}<version>; '
        'found "amazon_dynamodb_config/2-0-0".'
    )


def test_another_schema_names_it_and_the_supported_ones(tmp_path, local_resolver):
    storage = tmp_path / "storage.json"
    storage.write_text(
        json.dumps(
            {
                "schema": "iglu:com.snowplowanalytics.snowplow.storage/redshift_config/jsonschema/4-0-0",
                "data": {},
            }
        )
    )
    message = config_error(storage, local_resolver)
    assert (
        "'iglu:com.snowplowanalytics.snowplow.storage/redshift_config/jsonschema/4-0-0' is not a DynamoDB"
        in message
    )
    assert (
        f"Supported: {STORAGE_SCHEMA_PREFIX}1-0-0, {STORAGE_SCHEMA_PREFIX}1-0-1, "
        f"{STORAGE_SCHEMA_PREFIX}2-0-0."
    ) in message


def test_an_unresolvable_version_names_the_repositories_tried(tmp_path):
    storage = tmp_path / "storage.json"
    storage.write_text(json.dumps({"schema": STORAGE_SCHEMA_PREFIX + "1-0-2", "data": {}}))
    with IgluServer(make_registry(tmp_path / "registry")) as server:
        resolver = write_resolver(
            tmp_path,
            http_repo("mirror", server.url),
            embedded_repo("local", tmp_path / "nowhere", priority=1),
        )
        message = config_error(storage, resolver)
    assert message.startswith(f"storage.json: schema {STORAGE_SCHEMA_PREFIX}1-0-2 cannot be resolved")
    assert f"'local' ({tmp_path / 'nowhere'}): no such directory" in message
    assert f"'mirror' ({server.url}): not found (HTTP 404)" in message
    assert f"Supported by populator: {STORAGE_SCHEMA_PREFIX}1-0-0" in message


def test_a_version_a_repository_has_but_populator_does_not_support(tmp_path):
    key = SchemaKey.parse(STORAGE_SCHEMA_PREFIX + "3-0-0")
    future = copy.deepcopy(bundled_schema(SchemaKey.parse(STORAGE_SCHEMA_PREFIX + "2-0-0")))
    future["self"]["version"] = "3-0-0"
    registry = make_registry(tmp_path / "registry", schemas={key.path: future})
    storage = tmp_path / "storage.json"
    storage.write_text(json.dumps({"schema": key.uri, "data": {}}))
    message = config_error(storage, write_resolver(tmp_path, embedded_repo("local", registry)))
    assert message.startswith(f"storage.json: schema {key.uri} exists ({key.uri} from repository 'local')")
    assert "but populator does not support it" in message


# --- through the command line -----------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "AWS_ENDPOINT_URL": CLOSED_PORT_URI,  # any AWS call would fail loudly
        "AWS_ACCESS_KEY_ID": "AKIAENVIRONMENT00000",
        "AWS_SECRET_ACCESS_KEY": "environment-secret",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "NO_PROXY": "127.0.0.1,localhost",
        "COLUMNS": "400",
    }
    return env


@pytest.fixture
def archive(tmp_path) -> Path:
    root = tmp_path / "archive"
    (root / "run=2026-01-01-00-00-00").mkdir(parents=True)
    return root


def populator_run(archive: Path, storage: Path, resolver: Path, env: dict[str, str], *options: str):
    result = run_populator("run", str(archive), str(storage), str(resolver), *options, env=env)
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert FAKE_SECRET not in output and FAKE_KEY_ID not in output
    return result


def assert_config_error(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: ")
    for fragment in fragments:
        assert fragment in error, error


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"awsRegion": 42}, "storage.json: data.awsRegion: must be a string (found an integer)"),
        (
            {"auth": {"accessKeyId": FAKE_SECRET}},
            "storage.json: data.auth.secretAccessKey: required property is missing",
        ),
        ({"dynamodbTable": _DROP}, "storage.json: data.dynamodbTable: required property is missing"),
    ],
)
def test_cli_validation_errors_exit_2_before_any_aws_call(tmp_path, archive, cli_env, changes, fragment):
    storage = write_storage(tmp_path, "2-0-0", **changes)
    resolver = write_resolver(tmp_path, embedded_repo("bundled", BUNDLED_REGISTRY_PATH))
    assert_config_error(populator_run(archive, storage, resolver, cli_env), fragment)


def test_cli_resolver_without_repositories_exits_2(tmp_path, archive, cli_env):
    resolver = write_resolver(tmp_path)
    result = populator_run(archive, write_storage(tmp_path), resolver, cli_env)
    assert_config_error(result, "iglu_resolver.json: data.repositories is empty")


def test_cli_storage_config_not_self_describing_exits_2(tmp_path, archive, cli_env):
    storage = tmp_path / "storage.json"
    storage.write_text(json.dumps(storage_data("2-0-0")))
    resolver = write_resolver(tmp_path, embedded_repo("bundled", BUNDLED_REGISTRY_PATH))
    assert_config_error(
        populator_run(archive, storage, resolver, cli_env), "storage.json is not a self-describing JSON"
    )


def test_cli_unresolvable_schema_exits_2_naming_the_repositories(tmp_path, archive, cli_env):
    storage = tmp_path / "storage.json"
    storage.write_text(json.dumps({"schema": STORAGE_SCHEMA_PREFIX + "2-0-1", "data": {}}))
    resolver = write_resolver(tmp_path, http_repo("Iglu Central", CLOSED_PORT_URI))
    result = populator_run(archive, storage, resolver, cli_env)
    assert_config_error(
        result,
        f"schema {STORAGE_SCHEMA_PREFIX}2-0-1 cannot be resolved",
        "'Iglu Central' (http://127.0.0.1:9): connection refused",
    )


def test_cli_stricter_registry_schema_exits_2(tmp_path, archive, cli_env):
    with IgluServer(stricter_registry(tmp_path / "registry")) as server:
        resolver = write_resolver(tmp_path, http_repo("company registry", server.url))
        result = populator_run(archive, write_storage(tmp_path), resolver, cli_env, "--dry-run")
    assert_config_error(
        result, "data.dynamodbTable: must match the pattern ^prod-", "repository 'company registry'"
    )
    assert len(server.requests) == 1


def test_cli_uses_the_registry_and_runs(tmp_path, archive, cli_env):
    with IgluServer(make_registry(tmp_path / "registry")) as server:
        resolver = write_resolver(tmp_path, http_repo("mirror", server.url))
        result = populator_run(
            archive, write_storage(tmp_path, "1-0-1", id=UUID), resolver, cli_env, "--dry-run"
        )
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr
    assert server.paths() == [f"/schemas/{STORAGE_SCHEMA_PREFIX[len('iglu:') :]}1-0-1"]


def test_cli_falls_back_to_the_bundled_schema_with_one_warning_line(tmp_path, archive, cli_env):
    resolver = write_resolver(tmp_path, http_repo("Iglu Central", CLOSED_PORT_URI))
    result = populator_run(archive, write_storage(tmp_path), resolver, cli_env, "--dry-run")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert "'Iglu Central' (http://127.0.0.1:9): connection refused" in warnings[0]
    assert "using the copy bundled with populator" in warnings[0]

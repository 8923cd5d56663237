"""The Iglu resolver (`iglu`, `iglu_http`, `validation`): resolver-config validation, repository
order, HTTP and embedded lookups, and the bundled fallback. HTTP repositories are real servers on
loopback ports."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import pytest
from jsonschema import Draft4Validator

from populator.config import iglu, iglu_http, validation
from populator.config.iglu import (
    BUNDLED,
    BUNDLED_REGISTRY_PATH,
    Repository,
    ResolverConfig,
    SchemaKey,
    bundled_schema,
)
from populator.config.storage import Secret, load_resolver_config
from populator.errors import ConfigError
from tests.support.iglu_server import IgluServer, make_registry

RESOLVER_1_0_1 = "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-1"
DYNAMO_2_0_0 = SchemaKey.parse(
    "iglu:com.snowplowanalytics.snowplow.storage/amazon_dynamodb_config/jsonschema/2-0-0"
)
assert DYNAMO_2_0_0 is not None
FAKE_APIKEY = "f00dfeed-APIKEY-MUST-NOT-LEAK-0000"
CLOSED_PORT_URI = "http://127.0.0.1:9"  # discard port: nothing listens


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    monkeypatch.setattr(iglu_http, "HTTP_BACKOFF", 0.0)


def http_repo(name: str, uri: str, priority: int = 0, prefixes=("com.snowplowanalytics",), apikey=None):
    connection = {"uri": uri} | ({"apikey": apikey} if apikey is not None else {})
    return {
        "name": name,
        "priority": priority,
        "vendorPrefixes": list(prefixes),
        "connection": {"http": connection},
    }


def embedded_repo(name: str, path: str | Path, priority: int = 0, prefixes=("com.snowplowanalytics",)):
    return {
        "name": name,
        "priority": priority,
        "vendorPrefixes": list(prefixes),
        "connection": {"embedded": {"path": str(path)}},
    }


def write_resolver(directory: Path, repositories: list, schema: str = RESOLVER_1_0_1, **data) -> Path:
    path = directory / "iglu_resolver.json"
    path.write_text(
        json.dumps({"schema": schema, "data": {"cacheSize": 500, "repositories": repositories} | data})
    )
    return path


def marked_registry(root: Path, marker: str) -> Path:
    """A registry whose amazon_dynamodb_config 2-0-0 says `marker` in its description."""
    schema = copy.deepcopy(bundled_schema(DYNAMO_2_0_0))
    schema["description"] = marker
    return make_registry(root, schemas={DYNAMO_2_0_0.path: schema})


@pytest.fixture
def servers(tmp_path):
    started: list[IgluServer] = []

    def start(marker: str, **kwargs) -> IgluServer:
        server = IgluServer(marked_registry(tmp_path / f"registry-{marker}", marker), **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# --- the bundled schemas ----------------------------------------------------------------------


def test_bundled_schemas_are_self_describing_draft4_schemas_laid_out_as_an_iglu_repository():
    files = sorted(p for p in (BUNDLED_REGISTRY_PATH / "schemas").rglob("*") if p.is_file())
    keys = {p.relative_to(BUNDLED_REGISTRY_PATH / "schemas").as_posix() for p in files}
    assert keys == {
        "com.snowplowanalytics.snowplow.storage/amazon_dynamodb_config/jsonschema/1-0-0",
        "com.snowplowanalytics.snowplow.storage/amazon_dynamodb_config/jsonschema/1-0-1",
        "com.snowplowanalytics.snowplow.storage/amazon_dynamodb_config/jsonschema/2-0-0",
        "com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-0",
        "com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-1",
        "com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-2",
        "com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-3",
    }
    for path in files:
        schema = json.loads(path.read_text())
        Draft4Validator.check_schema(schema)
        assert schema["$schema"] == iglu.SELF_DESCRIBING_META_SCHEMA
        vendor, name, fmt, version = path.relative_to(BUNDLED_REGISTRY_PATH / "schemas").parts
        assert schema["self"] == {"vendor": vendor, "name": name, "format": fmt, "version": version}


def test_bundled_schemas_encode_the_snowplow_rules():
    def errors(version: str, data: dict) -> list[str]:
        key = SchemaKey.parse(
            f"iglu:com.snowplowanalytics.snowplow.storage/amazon_dynamodb_config/jsonschema/{version}"
        )
        validator = Draft4Validator(bundled_schema(key), format_checker=validation._FORMATS)
        return sorted(e.validator for e in validator.iter_errors(data))

    v1 = {
        "name": "n",
        "accessKeyId": "a",
        "secretAccessKey": "s",
        "awsRegion": "r",
        "dynamodbTable": "t",
        "purpose": "DUPLICATE_TRACKING",
    }
    uuid = "2b4b4b3e-6b0a-4c39-b2f0-6a4f5f2b7a10"
    assert errors("1-0-0", v1) == []
    assert errors("1-0-0", v1 | {"id": uuid}) == ["additionalProperties"]
    assert errors("1-0-1", v1) == []
    assert errors("1-0-1", v1 | {"id": uuid}) == []
    assert errors("1-0-1", v1 | {"id": "nope"}) == ["format"]
    assert errors("1-0-1", v1 | {"purpose": "EVENTS_MANIFEST"}) == ["enum"]
    v2 = {
        "name": "n",
        "auth": None,
        "awsRegion": "r",
        "dynamodbTable": "t",
        "id": uuid,
        "purpose": "EVENTS_MANIFEST",
    }
    assert errors("2-0-0", v2) == []
    assert errors("2-0-0", v2 | {"auth": {"accessKeyId": "a", "secretAccessKey": "s"}}) == []
    assert errors("2-0-0", v2 | {"auth": {"accessKeyId": "a"}}) == ["oneOf"]
    assert errors("2-0-0", {k: v for k, v in v2.items() if k != "id"}) == ["required"]
    assert errors("2-0-0", v2 | {"purpose": "DUPLICATE_TRACKING"}) == ["enum"]


# --- resolver config --------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1-0-0", "1-0-1", "1-0-2", "1-0-3"])
def test_every_resolver_config_version_is_accepted(tmp_path, version):
    extra = {"cacheTtl": 600} if version >= "1-0-2" else {}
    path = write_resolver(
        tmp_path,
        [http_repo("Iglu Central", "http://iglucentral.com")],
        schema=f"iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/{version}",
        **extra,
    )
    resolver = load_resolver_config(path)
    assert resolver.repositories == (
        Repository("Iglu Central", 0, ("com.snowplowanalytics",), "http", "http://iglucentral.com"),
    )
    assert resolver.cache_ttl == extra.get("cacheTtl")


@pytest.mark.parametrize(
    ("repositories", "schema", "extra", "message"),
    [
        (
            [],
            RESOLVER_1_0_1,
            {},
            "iglu_resolver.json: data.repositories is empty: the resolver has no repository",
        ),
        (
            [http_repo("c", "http://x", apikey="k")],
            "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-0",
            {},
            "data.repositories[0].connection.http.apikey: property is not allowed",
        ),
        (
            [{"name": "c", "vendorPrefixes": [], "connection": {"http": {"uri": "http://x"}}}],
            RESOLVER_1_0_1,
            {},
            "iglu_resolver.json: data.repositories[0].priority: required property is missing",
        ),
        (
            [http_repo("c", "http://x") | {"priority": "high"}],
            RESOLVER_1_0_1,
            {},
            "data.repositories[0].priority: must be a number (found a string)",
        ),
        (
            [{"name": "c", "priority": 0, "vendorPrefixes": [], "connection": {"http": {"url": "http://x"}}}],
            RESOLVER_1_0_1,
            {},
            "data.repositories[0].connection.http.uri: required property is missing",
        ),
        (
            [http_repo("c", "http://x")],
            "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-2",
            {"cacheTtl": 0},
            "data.cacheTtl: must be at least 1",
        ),
        (
            [http_repo("c", "http://x")],
            RESOLVER_1_0_1,
            {"cacheTtl": 60},
            "data.cacheTtl: property is not allowed",
        ),
        (
            [http_repo("c", "ftp://iglu.example.com")],
            RESOLVER_1_0_1,
            {},
            "data.repositories[0].connection.http.uri: must be an http:// or https:// URL",
        ),
        (
            [http_repo("c", "http://x")],
            "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-1-9",
            {},
            "schema iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-1-9 is not supported",
        ),
        (
            [http_repo("c", "http://x")],
            "iglu:com.acme/resolver/jsonschema/1-0-0",
            {},
            "is not an Iglu resolver config. Supported: iglu:com.snowplowanalytics.iglu/resolver-config",
        ),
        ([http_repo("c", "http://x")], "not-an-iglu-uri", {}, '"schema" must be an Iglu URI'),
    ],
)
def test_invalid_resolver_configs(tmp_path, repositories, schema, extra, message):
    path = write_resolver(tmp_path, repositories, schema=schema, **extra)
    with pytest.raises(ConfigError) as raised:
        load_resolver_config(path)
    assert message in str(raised.value)


def test_resolver_config_without_data_is_not_self_describing(tmp_path):
    path = tmp_path / "iglu_resolver.json"
    path.write_text(json.dumps({"cacheSize": 500, "repositories": []}))
    with pytest.raises(ConfigError, match=r"iglu_resolver\.json is not a self-describing JSON"):
        load_resolver_config(path)


def test_apikey_is_a_secret(tmp_path):
    path = write_resolver(tmp_path, [http_repo("private", "https://iglu.acme.com/api", apikey=FAKE_APIKEY)])
    resolver = load_resolver_config(path)
    assert resolver.repositories[0].apikey == Secret(FAKE_APIKEY)
    assert FAKE_APIKEY not in repr(resolver)
    assert FAKE_APIKEY not in str(resolver)


def test_relative_embedded_path_is_relative_to_the_resolver_file(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    monkeypatch.chdir(tmp_path)
    write_resolver(tmp_path / "conf", [embedded_repo("local", "registry")])
    assert load_resolver_config(Path("conf/iglu_resolver.json")).repositories[0].location == str(
        (tmp_path / "conf" / "registry").resolve()
    )


# --- order ------------------------------------------------------------------------------------


def test_order_is_vendor_match_then_embedded_then_priority():
    def repo(name, kind, priority, prefixes):
        return Repository(name, priority, tuple(prefixes), kind, "/x" if kind == "embedded" else "http://x")

    resolver = ResolverConfig(
        schema=RESOLVER_1_0_1,
        cache_size=500,
        cache_ttl=None,
        repositories=(
            repo("other-http-0", "http", 0, ["com.acme"]),
            repo("match-http-5", "http", 5, ["com.snowplowanalytics"]),
            repo("match-embedded-9", "embedded", 9, ["com.snowplowanalytics.snowplow"]),
            repo("other-embedded-1", "embedded", 1, []),
            repo("match-http-1", "http", 1, ["com.acme", "com.snowplow"]),
            repo("match-http-1-later", "http", 1, ["com."]),
        ),
    )
    assert [r.name for r in resolver.prioritized(DYNAMO_2_0_0)] == [
        "match-embedded-9",
        "match-http-1",
        "match-http-1-later",
        "match-http-5",
        "other-embedded-1",
        "other-http-0",
    ]


def test_a_vendor_prefix_match_beats_a_lower_priority(tmp_path, servers):
    generic, snowplow = servers("generic"), servers("snowplow")
    resolver = load_resolver_config(
        write_resolver(
            tmp_path,
            [
                http_repo("generic", generic.url, priority=0, prefixes=["com.acme"]),
                http_repo("snowplow", snowplow.url, priority=10),
            ],
        )
    )
    resolved = resolver.resolve(DYNAMO_2_0_0)
    assert (resolved.source, resolved.schema["description"]) == ("snowplow", "snowplow")
    assert generic.requests == []


def test_embedded_repositories_come_before_http_ones(tmp_path, servers):
    remote = servers("remote")
    local = marked_registry(tmp_path / "local", "local")
    resolver = load_resolver_config(
        write_resolver(
            tmp_path,
            [http_repo("remote", remote.url, priority=0), embedded_repo("local", local, priority=50)],
        )
    )
    resolved = resolver.resolve(DYNAMO_2_0_0)
    assert (resolved.source, resolved.schema["description"]) == ("local", "local")
    assert remote.requests == []


def test_lower_priority_is_asked_first_and_a_404_falls_through_without_retries(tmp_path, servers):
    first, second, third = servers("first"), servers("second"), servers("third")
    first.root = tmp_path / "empty"  # answers 404 for everything
    resolver = load_resolver_config(
        write_resolver(
            tmp_path,
            [
                http_repo("third", third.url, priority=3),
                http_repo("second", second.url, priority=2),
                http_repo("first", first.url, priority=1),
            ],
        )
    )
    resolved = resolver.resolve(DYNAMO_2_0_0)
    assert resolved.source == "second"
    assert not resolved.bundled
    assert len(first.requests) == 1
    assert len(second.requests) == 1
    assert third.requests == []


# --- HTTP -------------------------------------------------------------------------------------


def test_http_lookup_path_and_apikey_header(tmp_path, servers):
    server = servers("private", prefix="/api", apikey=FAKE_APIKEY)
    resolver = load_resolver_config(
        write_resolver(tmp_path, [http_repo("private", server.url, apikey=FAKE_APIKEY)])
    )
    resolved = resolver.resolve(DYNAMO_2_0_0)
    assert resolved.source == "private"
    assert server.paths() == [
        "/api/schemas/com.snowplowanalytics.snowplow.storage/amazon_dynamodb_config/jsonschema/2-0-0"
    ]
    assert server.requests[0].header("apikey") == FAKE_APIKEY


def test_no_apikey_header_without_an_apikey(tmp_path, servers):
    server = servers("public")
    load_resolver_config(write_resolver(tmp_path, [http_repo("public", server.url)])).resolve(DYNAMO_2_0_0)
    assert server.requests[0].header("apikey") is None


def test_a_wrong_apikey_is_refused_and_falls_back_with_a_warning(tmp_path, servers, caplog):
    server = servers("private", apikey="the-right-key")
    resolver = load_resolver_config(
        write_resolver(tmp_path, [http_repo("private", server.url, apikey=FAKE_APIKEY)])
    )
    with caplog.at_level(logging.WARNING, logger="populator"):
        resolved = resolver.resolve(DYNAMO_2_0_0)
    assert resolved.bundled and resolved.source == BUNDLED
    assert len(server.requests) == 1  # a 401 is not retried
    [record] = caplog.records
    assert "HTTP 401, access refused (check the repository's apikey)" in record.getMessage()
    assert FAKE_APIKEY not in caplog.text


def test_an_unreachable_repository_falls_back_to_the_bundled_schema_with_one_warning(tmp_path, caplog):
    resolver = load_resolver_config(
        write_resolver(
            tmp_path,
            [
                http_repo("Iglu Central", CLOSED_PORT_URI),
                embedded_repo("local", tmp_path / "does-not-exist", priority=1),
            ],
        )
    )
    with caplog.at_level(logging.WARNING, logger="populator"):
        resolved = resolver.resolve(DYNAMO_2_0_0)
    assert resolved.bundled
    assert resolved.schema == bundled_schema(DYNAMO_2_0_0)
    [record] = caplog.records
    message = record.getMessage()
    assert record.levelno == logging.WARNING and "\n" not in message
    assert f"'Iglu Central' ({CLOSED_PORT_URI}): connection refused (3 attempts)" in message
    assert "'local' (" in message and "no such directory" in message
    assert DYNAMO_2_0_0.uri in message and "using the copy bundled with populator" in message


def test_server_errors_are_retried_twice(tmp_path, servers, caplog):
    server = servers("flaky")
    server.fail_with = 503
    resolver = load_resolver_config(write_resolver(tmp_path, [http_repo("flaky", server.url)]))
    with caplog.at_level(logging.WARNING, logger="populator"):
        assert resolver.resolve(DYNAMO_2_0_0).bundled
    assert len(server.requests) == 3
    assert "'flaky' (" in caplog.text and "HTTP 503 (3 attempts)" in caplog.text


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<html>captive portal</html>", "the response is not JSON"),
        (b'{"type": 5}', "what it serves is not a valid JSON Schema"),
        (b"[1, 2]", "not a JSON Schema (not an object)"),
        (
            json.dumps(
                {"self": {"vendor": "com.acme", "name": "x", "format": "jsonschema", "version": "1-0-0"}}
            ).encode(),
            "it serves the schema of iglu:com.acme/x/jsonschema/1-0-0 at that address",
        ),
    ],
)
def test_what_is_not_a_schema_does_not_count_as_an_answer(tmp_path, servers, caplog, body, problem):
    bad, good = servers("bad"), servers("good")
    bad.body_override = body
    resolver = load_resolver_config(
        write_resolver(
            tmp_path, [http_repo("bad", bad.url, priority=0), http_repo("good", good.url, priority=1)]
        )
    )
    assert resolver.resolve(DYNAMO_2_0_0).source == "good"
    with caplog.at_level(logging.WARNING, logger="populator"):
        resolver = load_resolver_config(write_resolver(tmp_path, [http_repo("bad", bad.url)]))
        assert resolver.resolve(DYNAMO_2_0_0).bundled
    assert problem in caplog.text


def test_credentials_in_a_repository_uri_are_not_shown(tmp_path, caplog):
    uri = "http://user:hunter2@127.0.0.1:9"
    resolver = load_resolver_config(write_resolver(tmp_path, [http_repo("private", uri)]))
    with caplog.at_level(logging.WARNING, logger="populator"):
        resolver.resolve(DYNAMO_2_0_0)
    assert "hunter2" not in caplog.text
    assert "'private' (http://127.0.0.1:9)" in caplog.text


def test_a_schema_nobody_has_names_the_repositories_tried(tmp_path, servers):
    server = servers("registry")
    resolver = load_resolver_config(
        write_resolver(
            tmp_path,
            [http_repo("registry", server.url, prefixes=["com.acme"]), embedded_repo("local", tmp_path)],
        )
    )
    key = SchemaKey.parse("iglu:com.acme/thing/jsonschema/1-0-0")
    with pytest.raises(ConfigError) as raised:
        resolver.resolve(key)
    message = str(raised.value)
    assert message.startswith("schema iglu:com.acme/thing/jsonschema/1-0-0 cannot be resolved")
    assert f"'registry' ({server.url}): not found (HTTP 404)" in message
    assert f"'local' ({tmp_path.resolve()}): not found" in message
    assert "nor do the schemas bundled with populator" in message
    # vendor match first: the registry was asked before the embedded repository
    assert message.index("'registry'") < message.index("'local'")


def test_a_truncated_response_is_retried_then_falls_back(tmp_path, caplog):
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    served = []

    def serve() -> None:  # announce 1000 bytes, send 10, hang up; three times
        for _ in range(3):
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{"type": "')
                served.append(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        resolver = load_resolver_config(
            write_resolver(tmp_path, [http_repo("broken", f"http://127.0.0.1:{port}")])
        )
        with caplog.at_level(logging.WARNING, logger="populator"):
            assert resolver.resolve(DYNAMO_2_0_0).bundled
    finally:
        thread.join(timeout=5)
        listener.close()
    assert len(served) == 3
    assert "a broken HTTP response (IncompleteRead) (3 attempts)" in caplog.text


def test_the_apikey_does_not_follow_a_redirect_to_another_origin(tmp_path, servers):
    entry, elsewhere = servers("entry"), servers("elsewhere")
    entry.redirect_to = elsewhere.url.replace("127.0.0.1", "localhost")  # another host name
    resolver = load_resolver_config(write_resolver(tmp_path, [http_repo("r", entry.url, apikey=FAKE_APIKEY)]))
    assert resolver.resolve(DYNAMO_2_0_0).source == "r"
    assert entry.requests[0].header("apikey") == FAKE_APIKEY
    assert [r.header("apikey") for r in elsewhere.requests] == [None]


def test_the_apikey_follows_a_redirect_on_the_same_origin(tmp_path, servers):
    server = servers("moved", prefix="/api")
    server.redirect_to = server.url  # /schemas/... → /api/schemas/...
    base = server.url.removesuffix("/api")
    resolver = load_resolver_config(write_resolver(tmp_path, [http_repo("r", base, apikey=FAKE_APIKEY)]))
    assert resolver.resolve(DYNAMO_2_0_0).source == "r"
    assert [(r.path.split("/schemas/")[0], r.header("apikey")) for r in server.requests] == [
        ("", FAKE_APIKEY),
        ("/api", FAKE_APIKEY),
    ]

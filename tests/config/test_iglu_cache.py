"""Iglu lookups remembered between invocations (`iglu_cache`), as Snowplow's resolvers remember
them: per the resolver config's `cacheTtl`, misses too, on disk under the user's cache directory.

A repository that does not answer is a real listening socket on loopback that accepts connections
and never answers (or hangs up), counting them, so "the second start does not wait" is asserted as
"no connection was made". Every test sets the environment its cache directory comes from.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path

import orjson
import pytest

from populator.config import iglu, iglu_cache, iglu_http
from populator.config.iglu import BUNDLED, SchemaKey, bundled_schema
from populator.config.iglu_cache import CACHE_DIR_ENV, DEFAULT_TTL, IgluCache, cache_root
from populator.config.storage import load_resolver_config
from tests.support.backfill_helpers import run_populator, write_configs
from tests.support.iglu_server import IgluServer, make_registry

DYNAMO_2_0_0 = SchemaKey.of(
    "iglu:com.snowplowanalytics.snowplow.storage/amazon_dynamodb_config/jsonschema/2-0-0"
)
FAKE_APIKEY = "c0ffee00-APIKEY-NEVER-CACHED-0000"
TIMEOUT = 0.3  # seconds an attempt, in-process (the real one is 3 s)


class SilentServer:
    """Accepts connections and never answers (`hang_up`: closes each one at once, unanswered)."""

    def __init__(self, *, hang_up: bool = False) -> None:
        self.hang_up = hang_up
        self.connections = 0
        self._held: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.02)  # accept() wakes up to see `_stop`
        self._stop = threading.Event()
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, name="silent-iglu", daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            if self.hang_up:
                connection.close()
            else:
                self._held.append(connection)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()
        for connection in self._held:
            connection.close()


@pytest.fixture(autouse=True)
def _short_waits(monkeypatch):
    monkeypatch.setattr(iglu_http, "HTTP_TIMEOUT", TIMEOUT)
    monkeypatch.setattr(iglu_http, "HTTP_BACKOFF", 0.0)
    monkeypatch.setattr(iglu, "WAIT_NOTICE_SECONDS", 0.1)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """This test's cache, named by POPULATOR_CACHE_DIR (XDG_CACHE_HOME and HOME point elsewhere)."""
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-not-used"))
    monkeypatch.setenv("HOME", str(tmp_path / "home-not-used"))
    return tmp_path / "cache" / "iglu"


def http_repo(name: str, uri: str, priority: int = 0, apikey: str | None = None) -> dict:
    connection = {"uri": uri} | ({"apikey": apikey} if apikey is not None else {})
    return {
        "name": name,
        "priority": priority,
        "vendorPrefixes": ["com.snowplowanalytics"],
        "connection": {"http": connection},
    }


def write_resolver(directory: Path, *repositories: dict, version: str = "1-0-1", **data) -> Path:
    path = directory / "iglu_resolver.json"
    path.write_text(
        json.dumps(
            {
                "schema": f"iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/{version}",
                "data": {"cacheSize": 500, "repositories": list(repositories)} | data,
            }
        )
    )
    return path


def resolve(resolver: Path) -> tuple[iglu.ResolvedSchema, float]:
    """One start's lookup: the resolver config read afresh (nothing kept in memory), timed."""
    started = time.monotonic()
    resolved = load_resolver_config(resolver).resolve(DYNAMO_2_0_0)
    return resolved, time.monotonic() - started


def registry(tmp_path: Path, marker: str) -> IgluServer:
    schema = copy.deepcopy(bundled_schema(DYNAMO_2_0_0))
    schema["description"] = marker
    return IgluServer(make_registry(tmp_path / f"registry-{marker}", schemas={DYNAMO_2_0_0.path: schema}))


def entries(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.json")) if directory.is_dir() else []


def age_entries(directory: Path, seconds: float) -> None:
    """Move every entry's `stored_at` back by `seconds`: time passing, as the next start sees it."""
    for path in entries(directory):
        entry = orjson.loads(path.read_bytes())
        entry["stored_at"] -= seconds
        path.write_bytes(orjson.dumps(entry))


# --- a repository that does not answer --------------------------------------------------------


def test_a_repository_that_never_answers_holds_up_the_first_start_only(tmp_path, cache_dir, caplog):
    with SilentServer() as silent:
        resolver = write_resolver(tmp_path, http_repo("Iglu Central", silent.url))
        with caplog.at_level(logging.WARNING, logger="populator"):
            first, waited = resolve(resolver)
        assert first.bundled
        assert silent.connections == 3
        assert 3 * TIMEOUT <= waited < 3 * TIMEOUT + 2  # bounded: three attempts, then the bundled copy
        notice, fallback = (record.getMessage() for record in caplog.records)
        assert notice.startswith(
            f"looking up {DYNAMO_2_0_0.uri} in 'Iglu Central' ({silent.url}): no answer after"
        )
        assert "(3 attempts, 0.3 s each) before going on without it" in notice
        assert f"'Iglu Central' ({silent.url}): no answer within 0.3 s (3 attempts), " in fallback
        assert f"s spent; remembered for 10 min in {cache_dir}: starts until then do not wait" in fallback
        assert "using the copy bundled with populator" in fallback

        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="populator"):
            second, waited = resolve(resolver)
        assert second.bundled and second.schema == first.schema
        assert silent.connections == 3  # not asked again
        assert waited < TIMEOUT / 2
        [fallback] = (record.getMessage() for record in caplog.records)
        assert "no answer within 0.3 s (3 attempts), as remembered from " in fallback
        assert " s ago (asked again in 10 min" in fallback
        assert f"or at once without {cache_dir})" in fallback


def test_after_the_ttl_the_repository_is_asked_again(tmp_path, cache_dir):
    with SilentServer(hang_up=True) as silent:
        resolver = write_resolver(tmp_path, http_repo("c", silent.url), version="1-0-2", cacheTtl=60)
        assert resolve(resolver)[0].bundled
        assert silent.connections == 3
        age_entries(cache_dir, 59)
        assert resolve(resolver)[0].bundled
        assert silent.connections == 3  # 59 s old: still fresh
        age_entries(cache_dir, 2)
        assert resolve(resolver)[0].bundled
        assert silent.connections == 6  # 61 s old: asked again, and remembered again
        assert resolve(resolver)[0].bundled
        assert silent.connections == 6


def test_without_a_cache_ttl_lookups_are_remembered_for_the_default(tmp_path, cache_dir):
    assert DEFAULT_TTL == 600
    with SilentServer(hang_up=True) as silent:
        resolver = write_resolver(tmp_path, http_repo("c", silent.url), version="1-0-0")
        resolve(resolver)
        age_entries(cache_dir, DEFAULT_TTL - 5)
        resolve(resolver)
        assert silent.connections == 3
        age_entries(cache_dir, 10)
        resolve(resolver)
        assert silent.connections == 6


def test_an_entry_from_the_future_is_not_trusted(tmp_path, cache_dir):
    """The clock went back (or the entry was copied from a skewed machine): ask again."""
    with SilentServer(hang_up=True) as silent:
        resolver = write_resolver(tmp_path, http_repo("c", silent.url))
        resolve(resolver)
        age_entries(cache_dir, -3600)
        resolve(resolver)
        assert silent.connections == 6


@pytest.mark.parametrize(
    ("data", "version"),
    [({"cacheSize": 0}, "1-0-1"), ({"cacheTtl": 0}, "1-0-3")],
    ids=["cacheSize-0", "cacheTtl-0"],
)
def test_a_cache_size_or_ttl_of_0_turns_the_cache_off(tmp_path, cache_dir, caplog, data, version):
    with SilentServer() as silent:
        resolver = write_resolver(tmp_path, http_repo("c", silent.url), version=version, **data)
        with caplog.at_level(logging.WARNING, logger="populator"):
            resolve(resolver)
            resolve(resolver)
        assert silent.connections == 6
    assert not cache_dir.exists()
    field = next(iter(data))
    assert f"not remembered (the resolver config's {field} is 0): the next start waits again" in caplog.text


def test_a_slow_repository_before_one_that_answers_is_told_once_and_skipped_next_time(
    tmp_path, cache_dir, caplog
):
    with SilentServer() as silent, registry(tmp_path, "mirror") as mirror:
        resolver = write_resolver(
            tmp_path, http_repo("slow", silent.url, priority=0), http_repo("mirror", mirror.url, priority=1)
        )
        with caplog.at_level(logging.WARNING, logger="populator"):
            first, _ = resolve(resolver)
        assert (first.source, first.schema["description"]) == ("mirror", "mirror")
        told = [r.getMessage() for r in caplog.records if "s spent" in r.getMessage()]
        assert len(told) == 1 and told[0].endswith("starts until then do not wait; found in 'mirror'.")
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="populator"):
            second, waited = resolve(resolver)
        assert (second.source, second.schema["description"]) == ("mirror", "mirror")
        assert (silent.connections, len(mirror.requests)) == (3, 1)  # both answers remembered
        assert waited < TIMEOUT / 2 and caplog.records == []


# --- schemas found ----------------------------------------------------------------------------


def test_a_schema_found_is_remembered_and_used_without_asking(tmp_path, cache_dir):
    with registry(tmp_path, "ours") as server:
        resolver = write_resolver(tmp_path, http_repo("ours", server.url))
        for _ in range(3):
            resolved, _ = resolve(resolver)
            assert (resolved.source, resolved.schema["description"], resolved.bundled) == (
                "ours",
                "ours",
                False,
            )
        assert len(server.requests) == 1
    [path] = entries(cache_dir)
    entry = orjson.loads(path.read_bytes())
    assert entry["repository"] == server.url and entry["schema_key"] == DYNAMO_2_0_0.uri
    assert entry["schema"]["description"] == "ours" and entry["problem"] == ""


def test_the_key_is_the_repository_and_the_schema(tmp_path, cache_dir):
    with registry(tmp_path, "one") as one, registry(tmp_path, "two") as two:
        assert resolve(write_resolver(tmp_path, http_repo("r", one.url)))[0].schema["description"] == "one"
        # the same repository name elsewhere is another entry
        assert resolve(write_resolver(tmp_path, http_repo("r", two.url)))[0].schema["description"] == "two"
        # another schema of the same repository is another entry, too
        other = SchemaKey.of(DYNAMO_2_0_0.uri.replace("2-0-0", "1-0-0"))
        load_resolver_config(write_resolver(tmp_path, http_repo("r", one.url))).resolve(other)
        assert len(entries(cache_dir)) == 3
        assert [len(one.requests), len(two.requests)] == [2, 1]


def test_an_expired_schema_beats_a_repository_that_stopped_answering(tmp_path, cache_dir, caplog):
    """Snowplow's rule: a schema served before is used over a failure now, and stamped again."""
    with registry(tmp_path, "ours") as server:
        resolver = write_resolver(tmp_path, http_repo("ours", server.url), version="1-0-2", cacheTtl=60)
        resolve(resolver)
        age_entries(cache_dir, 3600)
        server.fail_with = 503
        with caplog.at_level(logging.WARNING, logger="populator"):
            resolved, _ = resolve(resolver)
        assert (resolved.source, resolved.schema["description"], resolved.bundled) == ("ours", "ours", False)
        assert len(server.requests) == 1 + 3
        [record] = caplog.records
        message = record.getMessage()
        assert f"looking up {DYNAMO_2_0_0.uri} in 'ours' ({server.url}): HTTP 503 (3 attempts)" in message
        assert message.endswith("; using the schema it served 60 min ago (remembered again for 60 s).")
        resolve(resolver)
        assert len(server.requests) == 4  # stamped again: not asked within the TTL


# --- what the cache never holds, and never does ----------------------------------------------


def test_the_apikey_is_never_in_the_cache(tmp_path, cache_dir):
    with registry(tmp_path, "private") as server:
        server.apikey = FAKE_APIKEY
        resolver = write_resolver(tmp_path, http_repo("private", server.url, apikey=FAKE_APIKEY))
        assert resolve(resolver)[0].source == "private"
        assert resolve(resolver)[0].source == "private"
        assert len(server.requests) == 1
    [path] = entries(cache_dir)
    assert FAKE_APIKEY.encode() not in path.read_bytes()
    assert orjson.loads(path.read_bytes())["schema"]["description"] == "private"


def test_credentials_in_a_repository_uri_are_never_in_the_cache(tmp_path, cache_dir):
    with SilentServer(hang_up=True) as silent:
        uri = silent.url.replace("http://", "http://user:hunter2-PASSWORD@")
        resolver = write_resolver(tmp_path, http_repo("private", uri))
        assert resolve(resolver)[0].bundled
        assert resolve(resolver)[0].bundled
    [path] = entries(cache_dir)
    assert b"hunter2" not in path.read_bytes() and b"user" not in path.read_bytes()
    assert orjson.loads(path.read_bytes())["repository"] == silent.url


def test_a_schema_that_echoes_the_apikey_is_not_stored(tmp_path, cache_dir):
    with registry(tmp_path, "echo") as server:
        schema = copy.deepcopy(bundled_schema(DYNAMO_2_0_0))
        schema["description"] = f"served to {FAKE_APIKEY}"
        server.body_override = json.dumps(schema).encode()
        resolver = write_resolver(tmp_path, http_repo("echo", server.url, apikey=FAKE_APIKEY))
        assert resolve(resolver)[0].source == "echo"
    assert not any(
        FAKE_APIKEY.encode() in path.read_bytes() for path in cache_dir.parent.rglob("*") if path.is_file()
    )


def test_an_apikey_refused_is_asked_about_again_at_the_next_start(tmp_path, cache_dir):
    """A 401/403 answers at once, and the user is likely correcting the apikey: not remembered."""
    with registry(tmp_path, "private") as server:
        server.apikey = "the-right-key"
        resolver = write_resolver(tmp_path, http_repo("private", server.url, apikey=FAKE_APIKEY))
        assert resolve(resolver)[0].bundled
        assert resolve(resolver)[0].bundled
        assert len(server.requests) == 2
        assert entries(cache_dir) == []
        resolver = write_resolver(tmp_path, http_repo("private", server.url, apikey="the-right-key"))
        assert resolve(resolver)[0].source == "private"


GOOD = {"format": 1, "repository": "R", "schema_key": "K", "stored_at": "NOW", "schema": None, "problem": "x"}
ANOTHER_SELF = {"vendor": "com.acme", "name": "x", "format": "jsonschema", "version": "1-0-0"}
DAMAGED = {
    "empty": b"",
    "truncated": b'{"format": 1, "repos',
    "binary": b"\x00\xff" * 100,
    "a-list": b"[1, 2]",
    "incomplete": {"format": 1},
    "other-format": GOOD | {"format": 99},
    "bad-time": GOOD | {"stored_at": "yesterday"},
    "no-schema-no-problem": GOOD | {"problem": ""},
    "schema-and-problem": GOOD | {"schema": {"type": "object"}},
    "not-a-schema": GOOD | {"schema": {"type": 5}, "problem": ""},
    "another-schema": GOOD | {"schema": {"self": ANOTHER_SELF}, "problem": ""},
    "other-repository": GOOD | {"repository": "http://elsewhere"},
    "other-key": GOOD | {"schema_key": "iglu:com.acme/x/jsonschema/1-0-0"},
}


@pytest.mark.parametrize("damage", DAMAGED)
def test_a_damaged_cache_file_is_ignored_and_replaced(tmp_path, cache_dir, damage):
    with registry(tmp_path, "ours") as server:
        resolver = write_resolver(tmp_path, http_repo("ours", server.url))
        path = IgluCache(cache_dir, 600).path(server.url, DYNAMO_2_0_0.uri)
        assert path is not None
        path.parent.mkdir(parents=True)
        content = DAMAGED[damage]
        if isinstance(content, dict):  # an entry, fresh, for this repository and key unless damaged there
            known = {"R": server.url, "K": DYNAMO_2_0_0.uri, "NOW": time.time()}
            content = orjson.dumps(
                {k: known.get(v, v) if isinstance(v, str) else v for k, v in content.items()}
            )
        path.write_bytes(content)
        resolved, _ = resolve(resolver)
        assert (resolved.source, resolved.schema["description"]) == ("ours", "ours")
        assert len(server.requests) == 1
        assert orjson.loads(path.read_bytes())["schema"]["description"] == "ours"  # rewritten
        resolve(resolver)
        assert len(server.requests) == 1
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_a_cache_that_cannot_be_read_or_written_never_fails_a_start(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(CACHE_DIR_ENV, str(blocker))
    with SilentServer() as silent:
        resolver = write_resolver(tmp_path, http_repo("c", silent.url))
        with caplog.at_level(logging.WARNING, logger="populator"):
            assert resolve(resolver)[0].bundled
            assert resolve(resolver)[0].bundled
        assert silent.connections == 6
    assert f"not remembered (cannot write {blocker / 'iglu'}: " in caplog.text
    assert "the next start waits again" in caplog.text


def test_an_entry_that_is_a_directory_is_ignored(tmp_path, cache_dir, caplog):
    with registry(tmp_path, "ours") as server:
        path = IgluCache(cache_dir, 600).path(server.url, DYNAMO_2_0_0.uri)
        assert path is not None
        path.mkdir(parents=True)
        resolver = write_resolver(tmp_path, http_repo("ours", server.url))
        with caplog.at_level(logging.INFO, logger="populator"):
            assert resolve(resolver)[0].source == "ours"
    assert f"populator's Iglu cache file {path}: cannot be read (" in caplog.text


# --- where the cache lives -------------------------------------------------------------------


def test_the_cache_directory_honours_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(CACHE_DIR_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_root() == tmp_path / "home" / ".cache" / "populator"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec: relative paths are invalid
    assert cache_root() == tmp_path / "home" / ".cache" / "populator"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "populator"
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
    monkeypatch.setenv(CACHE_DIR_ENV, "~/elsewhere")
    assert cache_root() == tmp_path / "home" / "elsewhere"
    assert IgluCache.for_resolver(500, None).directory == tmp_path / "home" / "elsewhere" / "iglu"


def test_without_a_home_directory_nothing_is_remembered(tmp_path, monkeypatch):
    monkeypatch.delenv(CACHE_DIR_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(iglu_cache.Path, "home", staticmethod(no_home))
    cache = IgluCache.for_resolver(500, 60)
    assert cache.directory is None and "set POPULATOR_CACHE_DIR" in cache.off


def test_by_default_the_cache_is_under_home_never_in_the_working_directory(tmp_path, monkeypatch):
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv(CACHE_DIR_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    with registry(tmp_path, "ours") as server:
        resolve(write_resolver(tmp_path, http_repo("ours", server.url)))
    assert len(entries(home / ".cache" / "populator" / "iglu")) == 1
    assert list(work.iterdir()) == []


# --- between real invocations ----------------------------------------------------------------


def test_a_second_start_of_the_command_line_does_not_connect(tmp_path):
    """Two dry runs of an empty archive, as separate processes with nothing but PATH and HOME: the
    first asks the repository (three attempts), the second does not connect at all."""
    storage, _ = write_configs(tmp_path, "manifest")
    archive = tmp_path / "empty-archive"
    archive.mkdir()
    home = tmp_path / "home"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
    }
    env |= {name: os.environ[name] for name in ("PYTHONPATH", "SYSTEMROOT") if name in os.environ}
    with SilentServer(hang_up=True) as silent:
        url = silent.url
        resolver = write_resolver(tmp_path, http_repo("Iglu Central", url))
        results = []
        for expected in (3, 3):
            result = run_populator(
                "run", str(archive), str(storage), str(resolver), "--dry-run", env=env, cwd=tmp_path
            )
            assert result.returncode == 0, result.stderr
            assert silent.connections == expected
            results.append(result)
    assert f"'Iglu Central' ({url}): " in results[0].stderr
    assert "as remembered from" in results[1].stderr and BUNDLED in results[1].stderr
    assert len(entries(home / ".cache" / "populator" / "iglu")) == 1
    assert [p.relative_to(tmp_path) for p in tmp_path.rglob("iglu")] == [Path("home/.cache/populator/iglu")]

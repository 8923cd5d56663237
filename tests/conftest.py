"""Shared fixtures: one moto server per session, reached over real HTTP.

* ``moto_server``: the session's :class:`~tests.support.moto_server.MotoHandle`.
* ``aws``: points this process at moto for one test (env applied with ``monkeypatch``) and
  offers ``.url``, ``.env`` (a full environment for subprocesses) and ``.boto3_client()``.
* ``dynamo_proxy``: a fault-injecting :class:`~tests.support.dynamo_proxy.DynamoProxy` in
  front of moto, stopped after the test.
* ``s3_proxy``: a fault-injecting :class:`~tests.support.s3_proxy.S3Proxy` (GetObject faults)
  in front of moto, stopped after the test.
* ``unique_name``: a fresh ``t-<8 hex>`` name; the server is shared, so tests isolate
  themselves with unique bucket/table names instead of resetting it.

Every test runs in its own directory and with its own ``POPULATOR_CACHE_DIR`` (autouse).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.config
import pytest

from tests.support.dynamo_proxy import DynamoProxy
from tests.support.moto_server import (
    ACCESS_KEY_ID,
    REGION,
    SECRET_ACCESS_KEY,
    MotoHandle,
    apply_aws_env,
    aws_child_env,
    start_moto_server,
)
from tests.support.s3_proxy import S3Proxy


@dataclass(frozen=True)
class AwsTestEnv:
    """This test's view of AWS: moto at ``url``, with ``env`` for subprocesses."""

    url: str
    env: dict[str, str]

    def boto3_client(
        self,
        service: str,
        *,
        endpoint_url: str | None = None,
        config: botocore.config.Config | None = None,
        **kwargs: Any,
    ) -> Any:
        """A boto3 client for moto (or ``endpoint_url``, e.g. a DynamoProxy), from a fresh
        session so no state is shared with other tests or with boto3's default session."""
        session = boto3.session.Session(
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            region_name=REGION,
        )
        return session.client(service, endpoint_url=endpoint_url or self.url, config=config, **kwargs)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoHandle]:
    handle = start_moto_server()
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def aws(moto_server: MotoHandle, monkeypatch: pytest.MonkeyPatch) -> AwsTestEnv:
    apply_aws_env(monkeypatch, moto_server.url)
    return AwsTestEnv(url=moto_server.url, env=aws_child_env(moto_server.url))


@pytest.fixture
def dynamo_proxy(moto_server: MotoHandle) -> Iterator[DynamoProxy]:
    proxy = DynamoProxy(moto_server.url).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def unique_name() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def pytest_configure(config: pytest.Config) -> None:
    # moto's werkzeug server logs every request; tests assert on what matters instead.
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)


@pytest.fixture(autouse=True)
def _work_in_tmp_path(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in its own directory: checkpoints (`.populator/`) land there."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _own_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test has its own populator cache (remembered Iglu lookups), outside its working
    directory, never the user's; subprocesses inherit it through the environment."""
    monkeypatch.setenv("POPULATOR_CACHE_DIR", str(tmp_path_factory.mktemp("populator-cache")))


@pytest.fixture
def s3_proxy(moto_server: MotoHandle) -> Iterator[S3Proxy]:
    """A fault-injecting :class:`~tests.support.s3_proxy.S3Proxy` in front of moto, stopped after
    the test. Point S3 alone at it: ``monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_proxy.url)``."""
    proxy = S3Proxy(moto_server.url).start()
    try:
        yield proxy
    finally:
        proxy.stop()

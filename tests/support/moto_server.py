"""A moto server on a loopback port, and the environment a client needs to use it.

Tests talk to moto over real HTTP (no mocks of AWS's wire protocol). One server is shared
by a whole test session, so tests isolate themselves with unique bucket/table names
rather than resets; :meth:`MotoHandle.reset` exists for the rare test that needs it.

The environment returned by :func:`aws_env` points every AWS SDK (boto3, aiobotocore, the
``populator`` CLI in a subprocess) at moto and neutralises a developer's real AWS setup.
Some variables must be *removed* rather than set (``AWS_PROFILE`` and friends), which a
plain dict cannot express, so:

* in-process, apply it with :func:`apply_aws_env` (``monkeypatch.setenv``/``delenv``);
* for a subprocess, pass :func:`aws_child_env` as ``env=`` (a full copy of ``os.environ``
  with the variables set and the others removed).
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from moto.server import ThreadedMotoServer

if TYPE_CHECKING:
    import pytest

REGION = "us-east-1"
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"

# Under a directory that does not exist, so these files can never be found.
_NOWHERE = os.path.join(os.sep, "nonexistent", "populator-tests")
MISSING_CONFIG_FILE = os.path.join(_NOWHERE, "aws-config")
MISSING_CREDENTIALS_FILE = os.path.join(_NOWHERE, "aws-credentials")

#: Variables removed from the environment: a real profile, real or temporary credentials,
#: credential providers (web identity, SSO, containers), settings that would bypass
#: ``AWS_ENDPOINT_URL`` and retry settings that would change the SDK's behaviour under test.
AWS_UNSET_VARS: tuple[str, ...] = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
)
#: Service-specific endpoint variables (``AWS_ENDPOINT_URL_S3`` ...) would win over
#: ``AWS_ENDPOINT_URL``; every variable with this prefix is removed too.
_SERVICE_ENDPOINT_PREFIX = "AWS_ENDPOINT_URL_"

_LOOPBACK_NO_PROXY = ("127.0.0.1", "localhost")


@dataclass
class MotoHandle:
    """A running moto server. ``url`` is ``http://127.0.0.1:PORT``."""

    url: str
    _server: ThreadedMotoServer = field(repr=False)

    def reset(self) -> None:
        """Forget every resource in every service (affects all users of this server)."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def stop(self) -> None:
        self._server.stop()


def start_moto_server() -> MotoHandle:
    """Start moto in a thread on 127.0.0.1 and a free port (chosen by the OS: no race)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return MotoHandle(url=f"http://{host}:{port}", _server=server)


def aws_env(endpoint_url: str) -> dict[str, str]:
    """The variables to *set* so a client process talks to ``endpoint_url`` and nothing else.

    Callers must also remove :func:`aws_vars_to_unset` (``AWS_PROFILE`` ...): use
    :func:`apply_aws_env` in-process (with ``monkeypatch``) and :func:`aws_child_env` for
    subprocesses, which do both.
    """
    no_proxy = _merge_no_proxy(os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or "")
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": MISSING_CONFIG_FILE,
        "AWS_SHARED_CREDENTIALS_FILE": MISSING_CREDENTIALS_FILE,
        "AWS_EC2_METADATA_DISABLED": "true",
        # A developer's HTTP(S)_PROXY must not capture loopback traffic to moto.
        "NO_PROXY": no_proxy,
        "no_proxy": no_proxy,
    }


def aws_vars_to_unset(environ: Mapping[str, str] | None = None) -> list[str]:
    """Names present in ``environ`` (default ``os.environ``) that must be removed."""
    environ = os.environ if environ is None else environ
    return [name for name in environ if name in AWS_UNSET_VARS or name.startswith(_SERVICE_ENDPOINT_PREFIX)]


def apply_aws_env(monkeypatch: pytest.MonkeyPatch, endpoint_url: str) -> dict[str, str]:
    """Point this process at ``endpoint_url`` for the duration of a test; returns the vars set."""
    for name in aws_vars_to_unset():
        monkeypatch.delenv(name, raising=False)
    env = aws_env(endpoint_url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def aws_child_env(endpoint_url: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A full environment for a subprocess: ``base`` (default ``os.environ``) + :func:`aws_env`,
    without the variables of :func:`aws_vars_to_unset`."""
    base = os.environ if base is None else base
    unset = set(aws_vars_to_unset(base))
    env = {name: value for name, value in base.items() if name not in unset}
    env.update(aws_env(endpoint_url))
    return env


def _merge_no_proxy(existing: str) -> str:
    entries = [entry.strip() for entry in existing.split(",") if entry.strip()]
    entries += [host for host in _LOOPBACK_NO_PROXY if host not in entries]
    return ",".join(entries)

"""Fixtures. The ``node`` tests run against a real node named by ``ACP_URL``
and ``ACP_TOKEN`` (node/cli/tests/it/python_client.rs starts one and sets them);
without them those tests are skipped."""

import os

import pytest

from acp_client import Client


def env(name: str) -> str:
    v = os.environ.get(name)
    if not v:
        pytest.skip(f"{name} is not set: run through `cargo test -p acp-cli --test it -- python_client::`")
    return v


@pytest.fixture(scope="session")
def client():
    env("ACP_URL")
    env("ACP_TOKEN")
    with Client() as c:
        yield c


@pytest.fixture(scope="session")
def domain():
    return env("ACP_TEST_DOMAIN")

"""A real redis-server per test module (tools/redisserver.py), for the unit tests of
the farm publisher and the integration tests alike."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redisserver import RedisServer


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    server = RedisServer(str(tmp_path_factory.mktemp("redis")))
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def redis_db(redis_server: RedisServer):
    """A client of the module's server, its database emptied for each test."""
    client = redis_server.client()
    client.flushall()
    try:
        yield client
    finally:
        client.close()

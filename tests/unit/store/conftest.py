from tests.harness.redis import redis_db, redis_server  # noqa: F401

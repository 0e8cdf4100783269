"""The Redis store beyond the shared suite, against a real ``redis-server``: every key under
the deployment's prefix and with a TTL; a killed server gives StoreUnavailable within
seconds and a restarted one works again with the same store; a stalled one times out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from proxy.state.redis_store import RedisStore, redact, split_prefix
from proxy.state.store import StoreUnavailable
from tests.state.conftest import RedisServer, free_port

HANG = 15  # seconds: only a hang reaches this; the store answers within its own deadline


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A plain client, to see what the store wrote."""
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def test_every_key_carries_the_prefix_and_a_ttl(redis_server: RedisServer,
                                                      raw: Redis) -> None:
    store = RedisStore(redis_server.url + "?prefix=deploy-ttl:")
    await store.set("a", b"1", 60)
    await store.set_if_absent("b", b"2", 0.5)
    await store.incr("c", 3, 120)
    await store.incr("c", 3, 9999)
    keys = sorted(await raw.keys("deploy-ttl:*"))
    assert keys == [b"deploy-ttl:a", b"deploy-ttl:b", b"deploy-ttl:c"]
    ttls = [await raw.pttl(key) for key in keys]
    assert 0 < ttls[0] <= 60_000
    assert 0 < ttls[1] <= 500
    assert 0 < ttls[2] <= 120_000  # the second incr left the first TTL alone
    await store.close()


async def test_the_default_prefix(redis_server: RedisServer, raw: Redis) -> None:
    store = RedisStore(redis_server.url)
    assert store.prefix == "llmproxy:"
    await store.set("default-prefix-probe", b"v", 60)
    assert await raw.get("llmproxy:default-prefix-probe") == b"v"
    await store.delete("default-prefix-probe")
    await store.close()


async def test_deployments_with_other_prefixes_do_not_meet(redis_server: RedisServer) -> None:
    blue = RedisStore(redis_server.url, prefix="blue:")
    green = RedisStore(redis_server.url + "?prefix=green:")
    await blue.set("key", b"blue", 60)
    await green.set("key", b"green", 60)
    assert await green.set_if_absent("only-green", b"g", 60) is True
    assert await blue.set_if_absent("only-green", b"b", 60) is True
    assert await blue.incr("n", 1, 60) == 1
    assert await green.incr("n", 1, 60) == 1
    assert await blue.get("key") == b"blue"
    assert sorted(await green.scan("")) == [("key", b"green"), ("n", b"1"),
                                             ("only-green", b"g")]
    await blue.delete("key")
    assert await green.get("key") == b"green"
    await blue.close()
    await green.close()


def test_the_prefix_comes_out_of_the_url_and_other_options_stay() -> None:
    assert split_prefix("redis://h:1/2?prefix=team%3Aa%3A&socket_keepalive=yes") == (
        "redis://h:1/2?socket_keepalive=yes", "team:a:")
    assert split_prefix("rediss://u:p@h/0") == ("rediss://u:p@h/0", None)


def test_a_password_never_shows() -> None:
    assert redact("redis://:s3cret@h:6379/0") == "redis://:***@h:6379/0"
    assert redact("rediss://user:s3cret@h/1") == "rediss://user:***@h/1"
    assert redact("redis://h:6379") == "redis://h:6379"


async def test_nothing_listening_is_store_unavailable_without_the_password() -> None:
    store = RedisStore(f"redis://:s3cret@127.0.0.1:{free_port()}/0", timeout=0.5)
    with pytest.raises(StoreUnavailable, match="redis store redis://:\\*\\*\\*@127") as caught:
        await asyncio.wait_for(store.get("k"), HANG)
    assert "s3cret" not in str(caught.value)
    assert await asyncio.wait_for(store.ping(), HANG) is False
    await store.close()


async def test_a_killed_server_is_store_unavailable_then_the_store_recovers(
        own_redis: RedisServer) -> None:
    store = RedisStore(own_redis.url, prefix="fault:", timeout=1.0)
    await store.set("k", b"before", 600)
    assert await store.ping() is True

    own_redis.kill()
    for call in (store.get("k"), store.set("k", b"v", 60), store.incr("n", 1, 60),
                 store.set_if_absent("x", b"v", 60), store.scan(""), store.delete("k")):
        with pytest.raises(StoreUnavailable, match="redis store redis://127.0.0.1"):
            await asyncio.wait_for(call, HANG)
    assert await asyncio.wait_for(store.ping(), HANG) is False

    own_redis.start()  # same port, empty: nothing was persisted
    assert await asyncio.wait_for(store.ping(), HANG) is True
    assert await store.get("k") is None
    await store.set("k", b"after", 60)
    assert await store.get("k") == b"after"
    assert await store.incr("n", 2, 60) == 2  # the INCR script is loaded again
    await store.close()


async def test_a_restart_between_two_calls_goes_unnoticed(own_redis: RedisServer) -> None:
    # The pooled connection died with the old server; the store's one retry takes a new one.
    store = RedisStore(own_redis.url, prefix="restart:", timeout=1.0)
    await store.set("k", b"v", 600)
    own_redis.kill()
    own_redis.start()
    assert await asyncio.wait_for(store.set("k", b"again", 60), HANG) is None
    assert await store.get("k") == b"again"
    await store.close()


async def test_a_stalled_server_times_out_then_the_store_recovers(
        own_redis: RedisServer) -> None:
    store = RedisStore(own_redis.url, prefix="stall:", timeout=0.5)
    await store.set("k", b"v", 600)
    own_redis.pause()  # connections are still accepted; no answer ever comes
    try:
        with pytest.raises(StoreUnavailable, match="redis store"):
            await asyncio.wait_for(store.get("k"), HANG)
        assert await asyncio.wait_for(store.ping(), HANG) is False
    finally:
        own_redis.resume()
    assert await asyncio.wait_for(store.get("k"), HANG) == b"v"
    assert await store.ping() is True
    await store.close()


def test_a_url_option_the_client_does_not_take_fails_at_once() -> None:
    with pytest.raises(ValueError, match="an option the redis client does not take"):
        RedisStore("redis://:pw@127.0.0.1:6379/0?sockettimeout=3")
    with pytest.raises(ValueError):
        RedisStore("redis://127.0.0.1:6379/0?db=zero")


async def test_tls_urls_make_a_tls_store() -> None:
    store = RedisStore("rediss://:pw@127.0.0.1:6380/0?prefix=p:")
    assert (store.label, store.prefix) == ("rediss://:***@127.0.0.1:6380/0", "p:")
    assert "pw" not in repr(store)
    await store.close()

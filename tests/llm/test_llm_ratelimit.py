"""The shared limiter on the real Redis: limits hold across processes, tokens settle, a 429 cools everyone."""
from __future__ import annotations

import multiprocessing
import time

import pytest
import redis

from matcher.pipeline.ratelimit import RateLimitTimeout, RedisRateLimiter

WINDOW_S = 1.0
LIMIT = 5


def _hammer(url: str, until: float, out) -> None:
    """A worker process: take every grant it can until `until`; report the server times of its grants."""
    limiter = RedisRateLimiter(
        redis.Redis.from_url(url), name="hammer", requests=LIMIT, tokens=10**9, window_s=WINDOW_S
    )
    times = []
    while time.time() < until:
        grant, wait = limiter.try_acquire(1)
        if grant is not None:
            times.append(grant.at_ms)
        else:
            time.sleep(min(wait, 0.01))
    out.put(times)


def test_the_request_limit_holds_across_two_worker_processes(settings, redis_client):
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    until = time.time() + 2.5 * WINDOW_S
    url = settings.RATE_LIMIT_REDIS_URL
    workers = [ctx.Process(target=_hammer, args=(url, until, out)) for _ in range(2)]
    for w in workers:
        w.start()
    grants = sorted(out.get(timeout=30) + out.get(timeout=30))
    for w in workers:
        w.join(timeout=30)
        assert w.exitcode == 0

    window_ms = int(WINDOW_S * 1000)
    # Any window of that length, wherever it starts, holds at most LIMIT grants from both processes together.
    worst = max(sum(1 for t in grants if start <= t < start + window_ms) for start in grants)
    assert worst <= LIMIT
    assert len(grants) > LIMIT  # both windows were really used, so the limit was exercised


def test_tokens_are_limited_and_settling_the_real_count_frees_the_rest(redis_client):
    limiter = RedisRateLimiter(redis_client, name="tokens", requests=100, tokens=1000, window_s=60)

    first, _ = limiter.try_acquire(600)
    refused, wait = limiter.try_acquire(600)
    assert first is not None and refused is None and wait > 0

    limiter.settle(first, 200)  # the call used fewer tokens than estimated
    second, _ = limiter.try_acquire(600)
    assert second is not None


def test_a_single_request_bigger_than_the_token_budget_still_goes_alone(redis_client):
    limiter = RedisRateLimiter(redis_client, name="big", requests=100, tokens=1000, window_s=60)

    big, _ = limiter.try_acquire(5000)
    after, _ = limiter.try_acquire(1)

    assert big is not None and after is None


def test_a_cool_down_stops_every_worker_sharing_the_limiter(redis_client):
    one = RedisRateLimiter(redis_client, name="cool", requests=100, tokens=10**6, window_s=60)
    other_client = redis.Redis(connection_pool=redis_client.connection_pool)
    other = RedisRateLimiter(other_client, name="cool", requests=100, tokens=10**6, window_s=60)

    one.cool_down(30)
    grant, wait = other.try_acquire(1)

    assert grant is None and 0 < wait <= 30


def test_acquire_gives_up_after_its_patience(redis_client):
    limiter = RedisRateLimiter(redis_client, name="patience", requests=1, tokens=10**6, window_s=60)
    limiter.acquire(1, max_wait_s=0)

    with pytest.raises(RateLimitTimeout):
        limiter.acquire(1, max_wait_s=1)

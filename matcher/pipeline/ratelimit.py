"""A requests-per-window and tokens-per-window limiter shared by every worker on every machine.

Plain Python, no Django: it takes a redis client. One Lua script decides each grant
atomically on the Redis server, with the server's clock, so workers on machines whose
clocks disagree still share one window.

It is a sliding log, not a fixed window: a grant is recorded with its time and token
estimate, and a new grant is refused while the grants of the last `window_s` seconds
already hold `requests` grants or `tokens` tokens. So *any* window of that length — not
only windows aligned to the minute — contains at most the limit, which is what the API
provider enforces.

Token counts are estimates before the call (the image tokens are known from the media
resolution, the answer is not), and `settle` replaces the estimate with the real count
from the response's usage metadata.

A provider 429 with a retry hint means the shared quota is gone for everybody, so
`cool_down` makes every worker wait, not only the one that was told.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

# KEYS: 1 log (zset grant-id → ms), 2 tokens (hash grant-id → tokens), 3 sequence, 4 cool-down
# ARGV: 1 window ms, 2 request limit, 3 token limit, 4 tokens wanted
# Returns {granted (0/1), grant id or wait ms, server time ms}
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local max_requests = tonumber(ARGV[2])
local max_tokens = tonumber(ARGV[3])
local wanted = tonumber(ARGV[4])

local cool = redis.call('PTTL', KEYS[4])
if cool > 0 then
  return {0, cool, now}
end

local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - window)
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  redis.call('HDEL', KEYS[2], unpack(expired))
end

local live = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local count = #live / 2
local used = 0
local tokens = {}
if count > 0 then
  local ids = {}
  for i = 1, #live, 2 do ids[#ids + 1] = live[i] end
  local values = redis.call('HMGET', KEYS[2], unpack(ids))
  for i = 1, #values do
    tokens[i] = tonumber(values[i]) or 0
    used = used + tokens[i]
  end
end

-- A single request larger than the whole token budget is let through alone rather than never.
local tokens_ok = (used + wanted <= max_tokens) or (used == 0)
if count < max_requests and tokens_ok then
  local id = redis.call('INCR', KEYS[3])
  redis.call('ZADD', KEYS[1], now, id)
  redis.call('HSET', KEYS[2], id, wanted)
  redis.call('PEXPIRE', KEYS[1], window * 2)
  redis.call('PEXPIRE', KEYS[2], window * 2)
  return {1, id, now}
end

-- How long until enough of the oldest grants leave the window.
local wait = 0
if count >= max_requests then
  local oldest = tonumber(live[(count - max_requests) * 2 + 2])
  wait = oldest + window - now
end
if not tokens_ok then
  local freed = 0
  for i = 1, count do
    freed = freed + tokens[i]
    if used - freed + wanted <= max_tokens or used - freed == 0 then
      local w = tonumber(live[i * 2]) + window - now
      if w > wait then wait = w end
      break
    end
  end
end
if wait < 1 then wait = 1 end
return {0, wait, now}
"""

# KEYS: 1 log, 2 tokens; ARGV: 1 grant id, 2 real tokens
_SETTLE = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS: 1 cool-down; ARGV: 1 ms. Only ever lengthens an existing cool-down.
_COOL_DOWN = """
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 1
"""


class RateLimitTimeout(Exception):
    """No grant within the caller's patience; the caller treats the pair as not verified."""


@dataclass(frozen=True)
class Grant:
    id: int
    at_ms: int  # Redis server time of the grant
    tokens: int


class Limiter(Protocol):
    def acquire(self, tokens: int, *, max_wait_s: float) -> Grant: ...

    def settle(self, grant: Grant, tokens: int) -> None: ...

    def cool_down(self, seconds: float) -> None: ...


class RedisRateLimiter:
    """Requests and tokens per `window_s`, shared through one Redis key prefix."""

    def __init__(
        self,
        redis_client,
        *,
        name: str,
        requests: int,
        tokens: int,
        window_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if requests < 1 or tokens < 1 or window_s <= 0:
            raise ValueError("limits and window must be positive")
        self.redis = redis_client
        self.requests = requests
        self.tokens = tokens
        self.window_ms = int(window_s * 1000)
        self._sleep = sleep
        prefix = f"ratelimit:{name}"
        self._keys = [f"{prefix}:log", f"{prefix}:tokens", f"{prefix}:seq", f"{prefix}:cool"]
        self._acquire = redis_client.register_script(_ACQUIRE)
        self._settle = redis_client.register_script(_SETTLE)
        self._cool = redis_client.register_script(_COOL_DOWN)

    def try_acquire(self, tokens: int) -> tuple[Grant | None, float]:
        """One attempt: (grant, 0) or (None, seconds to wait before trying again)."""
        granted, value, now = self._acquire(
            keys=self._keys, args=[self.window_ms, self.requests, self.tokens, max(0, int(tokens))]
        )
        if int(granted):
            return Grant(id=int(value), at_ms=int(now), tokens=int(tokens)), 0.0
        return None, int(value) / 1000.0

    def acquire(self, tokens: int, *, max_wait_s: float = 120.0) -> Grant:
        """Block until granted; raise RateLimitTimeout when that would take longer than max_wait_s."""
        deadline = time.monotonic() + max_wait_s
        while True:
            grant, wait = self.try_acquire(tokens)
            if grant is not None:
                return grant
            if time.monotonic() + wait > deadline:
                raise RateLimitTimeout(f"rate limit: no slot within {max_wait_s:.0f}s")
            self._sleep(wait)

    def settle(self, grant: Grant, tokens: int) -> None:
        """Replace a grant's token estimate with what the call really used."""
        self._settle(keys=self._keys[:2], args=[grant.id, max(0, int(tokens))])

    def cool_down(self, seconds: float) -> None:
        """Nobody gets a grant for `seconds` (the provider said so with a 429 retry hint)."""
        ms = int(seconds * 1000)
        if ms > 0:
            self._cool(keys=[self._keys[3]], args=[ms])


class NoLimiter:
    """For tools and tests that are not about rate: grants everything."""

    def __init__(self) -> None:
        self._seq = 0

    def acquire(self, tokens: int, *, max_wait_s: float = 0.0) -> Grant:
        self._seq += 1
        return Grant(id=self._seq, at_ms=int(time.time() * 1000), tokens=tokens)

    def settle(self, grant: Grant, tokens: int) -> None:
        pass

    def cool_down(self, seconds: float) -> None:
        pass

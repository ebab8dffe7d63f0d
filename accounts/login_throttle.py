"""Login throttling per account (the normalised address typed in) and per client address.

Without it, 50 wrong passwords in 12.5 s were followed by a working one (issue 21). Now
every attempt is counted *before* its password is checked, in one atomic step that first
refuses it when a lock is on: a throttled attempt never reaches argon2, and a burst of
parallel attempts cannot all slip in before the first failure is recorded. A count that
reaches a rule's threshold locks its key for 1 s, doubling with every further attempt up
to the rule's maximum; when the attempt then fails, its lock starts again from the failure
(an argon2 check takes longer than the shortest lock). While a lock is on, even the right
password is refused.

A successful login forgives: the account's count and lock are cleared, the address gets
back the one attempt it spent (only that one, so an attacker's own account cannot wash away
the failures an address collected against others). Counts are forgotten an hour (at least
twice the longest lock) after their last attempt.

Kept in Redis when ``LOYALMAIL_REDIS_URL`` is set, so every web process shares them (two
Lua scripts, each atomic); in the process's memory in the embedded one-process mode.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from accounts.services import normalize_login_email
from loyalmail.errors import ValidationFailed
from loyalmail.security import keyed_digest
from loyalmail.settings import Settings

#: At most 2 ** this many seconds before the rule's maximum caps it (no huge powers).
_MAX_DOUBLINGS = 30


@dataclass(frozen=True, slots=True)
class LockRule:
    failures_before_lock: int
    max_lock_seconds: int

    def lock_seconds(self, attempts: int) -> int:
        """The lock that the ``attempts``-th unforgiven attempt in a row sets (0: none)."""
        if attempts < self.failures_before_lock:
            return 0
        return min(
            self.max_lock_seconds, 2 ** min(attempts - self.failures_before_lock, _MAX_DOUBLINGS)
        )

    @property
    def kept_seconds(self) -> int:
        return max(3600, 2 * self.max_lock_seconds)


class AttemptCounter(Protocol):
    async def admit(self, checks: Sequence[tuple[str, LockRule]]) -> float:
        """0 when the attempt may go ahead (it is counted for every key); else the seconds
        until the longest lock on one of the keys ends (nothing is counted)."""

    async def failed(self, checks: Sequence[tuple[str, LockRule]]) -> None:
        """The admitted attempt failed: its lock, if its count sets one, runs from now (the
        check itself takes a while, longer than the shortest lock)."""

    async def clear(self, key: str) -> None: ...

    async def refund(self, key: str, rule: LockRule) -> None:
        """Take back one attempt, and the lock if the count falls below the threshold."""


@dataclass(slots=True)
class _Entry:
    attempts: int = 0
    locked_until: float = 0.0
    forget_at: float = 0.0


class MemoryAttempts:
    """One process's counts. Each method runs without awaiting: atomic on the event loop."""

    PRUNE_EVERY_SECONDS = 60.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._next_prune = 0.0

    def _prune(self, now: float) -> None:
        # Made-up addresses would otherwise pile up for as long as the process runs.
        if now >= self._next_prune:
            self._entries = {k: e for k, e in self._entries.items() if e.forget_at > now}
            self._next_prune = now + self.PRUNE_EVERY_SECONDS

    async def admit(self, checks: Sequence[tuple[str, LockRule]]) -> float:
        now = self._clock()
        self._prune(now)
        locked = [e.locked_until - now for k, _r in checks if (e := self._entries.get(k))]
        wait = max(locked, default=0.0)
        if wait > 0:
            return wait
        for key, rule in checks:
            entry = self._entries.setdefault(key, _Entry())
            entry.attempts += 1
            entry.forget_at = now + rule.kept_seconds
            lock = rule.lock_seconds(entry.attempts)
            if lock:
                entry.locked_until = now + lock
        return 0.0

    async def failed(self, checks: Sequence[tuple[str, LockRule]]) -> None:
        now = self._clock()
        for key, rule in checks:
            entry = self._entries.get(key)
            lock = rule.lock_seconds(entry.attempts) if entry else 0
            if entry and lock:
                entry.locked_until = max(entry.locked_until, now + lock)

    async def clear(self, key: str) -> None:
        self._entries.pop(key, None)

    async def refund(self, key: str, rule: LockRule) -> None:
        entry = self._entries.get(key)
        if entry is None:
            return
        entry.attempts = max(0, entry.attempts - 1)
        if entry.attempts < rule.failures_before_lock:
            entry.locked_until = 0.0


# Every script's KEYS: the count and the lock key of each check, in pairs; ARGV: threshold,
# longest lock (s) and how long the count is kept (s) of each check.
_LOCK = """
local function lock(key, n, threshold, longest)
  if n >= threshold then
    local seconds = math.min(longest, 2 ^ math.min(n - threshold, 30))  -- _MAX_DOUBLINGS
    redis.call('SET', key, '1', 'PX', string.format('%d', seconds * 1000))
  end
end
"""
_ADMIT = (
    _LOCK
    + """
local wait = 0
for i = 2, #KEYS, 2 do
  local left = redis.call('PTTL', KEYS[i])
  if left > wait then wait = left end
end
if wait > 0 then return wait end
for i = 1, #KEYS, 2 do
  local j = (i - 1) / 2 * 3
  local n = redis.call('INCR', KEYS[i])
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[j + 3]))
  lock(KEYS[i + 1], n, tonumber(ARGV[j + 1]), tonumber(ARGV[j + 2]))
end
return 0
"""
)
_FAILED = (
    _LOCK
    + """
for i = 1, #KEYS, 2 do
  local j = (i - 1) / 2 * 3
  local n = tonumber(redis.call('GET', KEYS[i]) or '0')
  lock(KEYS[i + 1], n, tonumber(ARGV[j + 1]), tonumber(ARGV[j + 2]))
end
return 0
"""
)
# KEYS: count and lock key; ARGV: threshold.
_REFUND = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then n = redis.call('DECR', KEYS[1]) end
if n < tonumber(ARGV[1]) then redis.call('DEL', KEYS[2]) end
return n
"""


class RedisAttempts:
    """Counts shared by every web process. The blocking client runs in a thread, like the
    send rates' (campaigns.sending.rates): a login is rare enough for that."""

    PREFIX = "loyalmail:login:"

    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(url)
        self._admit = self._client.register_script(_ADMIT)
        self._failed = self._client.register_script(_FAILED)
        self._refund = self._client.register_script(_REFUND)

    def _keys(self, key: str) -> list[str]:
        return [f"{self.PREFIX}{key}:count", f"{self.PREFIX}{key}:lock"]

    def _arguments(self, checks: Sequence[tuple[str, LockRule]]) -> tuple[list[str], list[Any]]:
        keys: list[str] = []
        values: list[Any] = []
        for key, rule in checks:
            keys += self._keys(key)
            values += [rule.failures_before_lock, rule.max_lock_seconds, rule.kept_seconds]
        return keys, values

    async def admit(self, checks: Sequence[tuple[str, LockRule]]) -> float:
        waited_ms = await asyncio.to_thread(self._admit, *self._arguments(checks))
        return int(waited_ms) / 1000

    async def failed(self, checks: Sequence[tuple[str, LockRule]]) -> None:
        await asyncio.to_thread(self._failed, *self._arguments(checks))

    async def clear(self, key: str) -> None:
        await asyncio.to_thread(self._client.delete, *self._keys(key))

    async def refund(self, key: str, rule: LockRule) -> None:
        await asyncio.to_thread(self._refund, self._keys(key), [rule.failures_before_lock])


def account_key(email: str) -> str:
    """The address as its user's row has it (accounts.services.normalize_login_email), keyed
    so that Redis never holds it in the clear; a malformed one counts as typed."""
    try:
        address = normalize_login_email(email)
    except ValidationFailed:
        address = email.strip().lower()
    return "account:" + keyed_digest("login-throttle", address)


class LoginThrottle:
    def __init__(self, counter: AttemptCounter, per_account: LockRule, per_address: LockRule):
        self.counter = counter
        self.per_account = per_account
        self.per_address = per_address

    def _checks(self, email: str, client_address: str) -> list[tuple[str, LockRule]]:
        return [
            (account_key(email), self.per_account),
            ("address:" + client_address, self.per_address),
        ]

    async def admit(self, email: str, client_address: str) -> float:
        """0: check the password (the attempt is counted); else the seconds to wait."""
        return await self.counter.admit(self._checks(email, client_address))

    async def failed(self, email: str, client_address: str) -> None:
        await self.counter.failed(self._checks(email, client_address))

    async def succeeded(self, email: str, client_address: str) -> None:
        await self.counter.clear(account_key(email))
        await self.counter.refund("address:" + client_address, self.per_address)


def login_throttle(settings: Settings) -> LoginThrottle:
    counter: AttemptCounter = (
        RedisAttempts(settings.redis_url) if settings.redis_url else MemoryAttempts()
    )
    return LoginThrottle(
        counter,
        per_account=LockRule(settings.login_failures_before_lock, settings.login_lock_max_seconds),
        per_address=LockRule(
            settings.login_address_failures_before_lock, settings.login_lock_max_seconds
        ),
    )

"""Password hashing and checking (argon2), always off the event loop.

One argon2 check takes a third of a second of one core and 64 MiB (argon2-cffi's defaults).
Run in an async handler it stopped the whole web process for that long: six parallel wrong
logins raised the open pixel's median from 4 ms to 99 ms and ``/health`` to 1.7 s (issue 21).
Every hash and check therefore runs in a small thread pool of its own (argon2-cffi releases
the GIL while it works), sized by the setting ``password_hash_threads``: that also bounds
the CPU and memory a flood of logins can take, since the rest of the attempts wait in line.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from loyalmail.settings import get_settings

_hasher = PasswordHasher()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=get_settings().password_hash_threads,
                thread_name_prefix="password-hash",
            )
        return _pool


def _matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def hash_password(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_executor(), _hasher.hash, password)


async def password_matches(password_hash: str, password: str) -> bool:
    """False for a wrong password and for a stored value that is no argon2 hash."""
    return await asyncio.get_running_loop().run_in_executor(
        _executor(), _matches, password_hash, password
    )


def needs_rehash(password_hash: str) -> bool:
    """Cheap (it reads the hash's parameters): may run on the loop."""
    return _hasher.check_needs_rehash(password_hash)


#: Checked against when the address is unknown, so that such a login takes as long as one
#: for a known address. Made once, at import (the CLI and the app import it before serving).
DUMMY_HASH = _hasher.hash("not a password")


def shutdown() -> None:
    """Let the pool's threads end (the test session's end); the next hash starts a new one."""
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.shutdown(wait=True)
            _pool = None

"""UUIDv7 message ids, cheap enough to make one per message (RFC 9562 §5.7, §6.2).

Layout: 48 bits of Unix milliseconds, the version, a 42-bit counter (RFC 9562 §6.2,
"fixed bit-length dedicated counter"), the variant, then 32 bits that stay the same for
the whole process. Within a millisecond the counter counts up by one, so a process's ids
are strictly increasing; each new millisecond reseeds it at random with its top bit clear,
leaving at least 2**41 ids of room before it rolls over, and a roll-over borrows the next
millisecond rather than repeat an id. Two processes differ by their 32 process bits and by
their independent counter seeds, and a forked child draws fresh ones, so ids stay unique
across processes while the OS random source is read once per millisecond, not per id.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid

_COUNTER_BITS = 42
_COUNTER_MAX = (1 << _COUNTER_BITS) - 1
_SEED_BITS = _COUNTER_BITS - 1  # top bit clear: room to count within the millisecond
_VERSION = 0x7 << 76
_VARIANT = 0x2 << 62


class _Generator:
    """The per-process state: last millisecond, counter, process bits, random source."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reseed()

    def reseed(self) -> None:
        """Draw fresh process bits and a fresh random source (at start and in a fork)."""
        self.random = random.Random(os.urandom(32))
        self.process_bits = self.random.getrandbits(32)
        self.last_ms = -1
        self.counter = 0

    def next(self, now_ms: int) -> int:
        """Return the integer value of the next id, at `now_ms` or just after the last one."""
        with self.lock:
            if now_ms > self.last_ms:
                self.last_ms = now_ms
                self.counter = self.random.getrandbits(_SEED_BITS)
            elif self.counter < _COUNTER_MAX:
                self.counter += 1  # same millisecond, or the clock stepped back
            else:
                self.last_ms += 1  # the counter rolled over: borrow the next millisecond
                self.counter = self.random.getrandbits(_SEED_BITS)
            ms, counter = self.last_ms, self.counter
        rand_a, rand_b_high = counter >> 30, counter & 0x3FFF_FFFF
        return (
            (ms & 0xFFFF_FFFF_FFFF) << 80
            | _VERSION
            | rand_a << 64
            | _VARIANT
            | rand_b_high << 32
            | self.process_bits
        )


_GENERATOR = _Generator()
os.register_at_fork(after_in_child=_GENERATOR.reseed)


def new_message_id(now_ms: int | None = None) -> uuid.UUID:
    """Return a UUIDv7, greater than every id this process made before.

    `now_ms` (tests) sets the clock; ids stay increasing if it goes back.
    Time-ordered ids keep inbox and outbox indexes append-mostly.
    """
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    return uuid.UUID(int=_GENERATOR.next(ms))

"""Message ids: UUIDv7, increasing within a process, unique across calls and forks."""

from __future__ import annotations

import itertools
import os
import uuid

from sous_contracts import ids
from sous_contracts.ids import new_message_id


def test_ids_are_uuid7_and_strictly_increasing() -> None:
    made = [new_message_id() for _ in range(50_000)]
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in made)
    assert all(a < b for a, b in itertools.pairwise(made))
    assert len(set(made)) == len(made)


def test_ids_keep_increasing_when_the_clock_steps_back() -> None:
    later = new_message_id(now_ms=4_000_000_000_000)
    earlier_clock = [new_message_id(now_ms=1_700_000_000_000 + i) for i in range(100)]
    assert all(later < i for i in earlier_clock)
    assert earlier_clock == sorted(earlier_clock)


def test_a_full_counter_borrows_the_next_millisecond() -> None:
    gen = ids._Generator()
    ms = 1_800_000_000_000
    gen.next(ms)
    gen.counter = ids._COUNTER_MAX - 1
    last_in_ms = uuid.UUID(int=gen.next(ms))
    borrowed = uuid.UUID(int=gen.next(ms))
    assert last_in_ms < borrowed
    assert borrowed.int >> 80 == ms + 1


def _ids_of_children(children: int, each: int) -> list[uuid.UUID]:
    pipes = []
    for _ in range(children):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: send its ids back and leave without cleanup
            os.close(read)
            data = b"".join(new_message_id().bytes for _ in range(each))
            with os.fdopen(write, "wb") as out:
                out.write(data)
            os._exit(0)
        os.close(write)
        pipes.append((pid, read))
    made = []
    for pid, read in pipes:
        with os.fdopen(read, "rb") as inp:
            data = inp.read()
        os.waitpid(pid, 0)
        made += [uuid.UUID(bytes=data[i : i + 16]) for i in range(0, len(data), 16)]
    return made


def test_ids_are_unique_across_forked_processes() -> None:
    new_message_id()  # the parent's state, which every child inherits at fork
    made = _ids_of_children(4, 2_000) + [new_message_id() for _ in range(2_000)]
    assert len(made) == 10_000
    assert len(set(made)) == len(made)

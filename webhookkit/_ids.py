"""Record ids: 128 random bits as 32 hex characters (the shape of a UUID4's hex)."""

from __future__ import annotations

import os
from collections.abc import Iterator

# Ids are cut from 4 KiB of the OS's random bytes at a time: one getrandom() call per 256 ids
# instead of one per id (every attempt record takes an id; a system call per record was 5-8 %
# of the PostgreSQL drain's samples). ``next`` on a list iterator is one C call, so threads
# never get the same id; two threads refilling at once each cut their own bytes. A forked
# child drops what it inherited: it would hand out its parent's unused ids again.
_BATCH = 256
_ids: Iterator[str] = iter(())


def _refill() -> Iterator[str]:
    global _ids
    raw = os.urandom(16 * _BATCH).hex()
    _ids = ids = iter([raw[i : i + 32] for i in range(0, 32 * _BATCH, 32)])
    return ids


def _drop_inherited() -> None:
    global _ids
    _ids = iter(())


os.register_at_fork(after_in_child=_drop_inherited)


def new_id() -> str:
    try:
        return next(_ids)
    except StopIteration:
        return next(_refill())

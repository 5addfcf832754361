"""Question ids, handed out in blocks (hi/lo) so most ids cost no database round trip.

A live question must have its id the moment it is broadcast, before the write-behind
flushes it; a block reserved from ``id_sequences`` gives each process its own range.
"""

from __future__ import annotations

import asyncio

from .database import Store

# One database write per hundred questions; a process that dies wastes at most a
# hundred ids, which a BIGINT can afford.
ID_BLOCK_SIZE = 100


class IdAllocator:
    def __init__(self, store: Store, sequence: str, block_size: int = ID_BLOCK_SIZE) -> None:
        self._store = store
        self._sequence = sequence
        self._block_size = block_size
        self._next = 0
        self._end = 0
        self._lock = asyncio.Lock()

    async def next_id(self) -> int:
        async with self._lock:
            if self._next >= self._end:
                self._next = await self._store.allocate_ids(self._sequence, self._block_size)
                self._end = self._next + self._block_size
            value = self._next
            self._next += 1
            return value

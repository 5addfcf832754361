"""The cold store: one interface (:class:`Store`) over two engines (MySQL, SQLite)."""

from __future__ import annotations

from pathlib import Path

from .database import Store
from .engines import MYSQL_POOL_SIZE, open_engine
from .ids import IdAllocator

__all__ = ["Store", "IdAllocator", "open_store"]


async def open_store(mysql_url: str | None, data_dir: Path, pool_size: int = MYSQL_POOL_SIZE) -> Store:
    return Store(await open_engine(mysql_url, data_dir, pool_size))

"""Stopping background tasks for sure."""

from __future__ import annotations

import asyncio


async def cancel_and_wait(task: asyncio.Task) -> None:
    """Cancel ``task`` and wait until it has ended. One cancel is not always enough: on
    Python 3.11 ``asyncio.wait_for`` (which redis-py wraps around each command) swallows a
    cancel that arrives as its inner call completes, and the task's loop goes on."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.1)

"""A TCP proxy in front of a real service (MariaDB, Redis) that a test can cut: every
connection through it is dropped and new ones are refused until it is restored. The
service itself keeps running for the rest of the suite; only the server under test loses it."""

from __future__ import annotations

import asyncio
import contextlib


class FaultProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()
        self.cut = False
        self._flowing = asyncio.Event()
        self._flowing.set()

    async def start(self) -> "FaultProxy":
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def cut_off(self) -> None:
        """Drop every open connection (a reset, as a crashed service gives) and refuse new ones."""
        self.cut = True
        for writer in list(self._writers):
            transport = writer.transport
            with contextlib.suppress(Exception):
                transport.abort()
        self._writers.clear()

    def freeze(self) -> None:
        """Keep every connection open but pass nothing either way: a service that hangs
        (stopped with SIGSTOP, a full disk, a network partition without resets)."""
        self._flowing.clear()

    def restore(self) -> None:
        self.cut = False
        self._flowing.set()

    async def close(self) -> None:
        self.cut_off()
        self._flowing.set()
        if self._tasks:  # the aborted connections end their pipes; stragglers are cancelled
            _, stragglers = await asyncio.wait(set(self._tasks), timeout=1)
            for task in stragglers:
                task.cancel()
            await asyncio.gather(*stragglers, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

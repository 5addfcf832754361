"""``ask2live serve --workers N``: N processes serving one port.

The parent binds the listening sockets, then forks the workers, and does nothing else: it
never starts an event loop, opens a database or a Redis connection (each worker builds its
own after the fork; an asyncio loop or a connection pool does not survive one). The kernel
hands each new connection to whichever worker accepts it first. The parent:

- restarts a worker that dies (killed, or exited with an error), with the same index, after
  ``RESTART_DELAY_SECONDS``; a worker that exits with status 0 was told to stop and is not;
- on SIGTERM or SIGINT, passes SIGTERM on to every worker (each closes its sockets and
  flushes its write-behind, as a single process does; one still starting just ends),
  restarts none, and exits once all have: 0 if each exited cleanly.

This is Tornado's ``fork_processes`` with two differences that matter on shutdown: Tornado's
parent dies of SIGTERM at once and leaves its workers running, and it would restart a worker
that a stop caught half-way through start-up. And each worker asks the kernel for SIGTERM
should the parent die (SIGKILL), so that no worker outlives its parent unnoticed.
"""

from __future__ import annotations

import ctypes
import logging
import os
import random
import signal
import sys
import time

log = logging.getLogger("ask2live.workers")

# A dead worker is started again after this pause: short next to a client's reconnect
# back-off, long enough that a worker failing at start (MySQL unreachable) does not fork
# in a tight loop while the others go on serving.
RESTART_DELAY_SECONDS = 1.0
# Restarts over the parent's life before it gives up and stops the rest (Tornado's
# fork_processes default): a worker that keeps dying has a cause a restart will not fix.
MAX_RESTARTS = 100
# prctl(2) option: the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1


def worker_count(requested: int) -> int:
    """0: one per core this process may run on."""
    if requested > 0:
        return requested
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the worker outlives a killed parent; a stopped parent still stops it


def fork_workers(count: int) -> int:
    """Fork ``count`` workers and supervise them. Returns, in a worker, its index (0 to
    count-1); the parent never returns: it exits once every worker has gone, with 0 if
    each exited cleanly."""
    children: dict[int, int] = {}  # pid -> worker index
    stopping = False
    parent = os.getpid()

    def start(index: int) -> bool:
        """True in the new worker."""
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            _die_with_parent()
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)
            random.seed()  # not the parent's sequence
            return True
        children[pid] = index
        log.info("worker %d started (pid %d)", index, pid)
        return False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        if not stopping:
            log.info("stopping %d workers", len(children))
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for index in range(count):
        if start(index):
            return index
    restarts = 0
    clean = True
    while children:
        pid, status = os.wait()
        index = children.pop(pid, None)
        if index is None:
            continue
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            log.info("worker %d (pid %d) exited", index, pid)
            continue
        how = (f"was killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
               else f"exited with status {os.WEXITSTATUS(status)}")
        if stopping and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM:
            # Stopped while it started, before it had its own handler: it had served nothing.
            log.info("worker %d (pid %d) stopped during its start-up", index, pid)
            continue
        if stopping:
            log.warning("worker %d (pid %d) %s while stopping", index, pid, how)
            clean = False
            continue
        restarts += 1
        if restarts > MAX_RESTARTS:
            log.error("worker %d (pid %d) %s; %d restarts already: stopping", index, pid, how, MAX_RESTARTS)
            clean = False
            stop(signal.SIGTERM, None)
            continue
        log.warning("worker %d (pid %d) %s; restarting it in %.0f s", index, pid, how, RESTART_DELAY_SECONDS)
        time.sleep(RESTART_DELAY_SECONDS)
        if not stopping and start(index):
            return index
    sys.exit(0 if clean else 1)

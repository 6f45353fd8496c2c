"""`FlockLakeLock`: one writer per lake, held with flock(2) on `<lake>/_lock`.

The kernel drops the lock when the holding process ends, however it ends (SIGKILL included), so
a crashed writer never leaves the lake locked. While it holds the lock, the writer keeps its
command line, pid and start time in the file, so a second writer can say whom it waits for.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from finops_core.errors import LakeBusy

LOCK_FILE = "_lock"
OWNER_READ_SECONDS = 2.0  # how long a loser waits for the winner to have written its name


class FlockLakeLock:
    def __init__(self, root: Path) -> None:
        self.path = Path(root) / LOCK_FILE

    @contextlib.contextmanager
    def hold(self, command: str, *, wait: bool, waiting: Callable[[str], None]) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not _try_lock(descriptor):
                holder = self.holder()
                if not wait:
                    raise LakeBusy(
                        f"The lake {self.path.parent} is being written by {holder}; wait for "
                        "it to finish, or run again without --no-wait to wait for it."
                    )
                waiting(f"waiting for {holder} to finish writing {self.path.parent} ...")
                fcntl.flock(descriptor, fcntl.LOCK_EX)
            _write_owner(descriptor, command)
            try:
                yield
            finally:
                os.ftruncate(descriptor, 0)
        finally:
            os.close(descriptor)  # closing the last descriptor releases the lock

    def holder(self) -> str:
        """Who holds the lock, as `finops batch (pid 123, since 12:00:01 UTC)`."""
        deadline = time.monotonic() + OWNER_READ_SECONDS
        while True:
            try:
                owner = json.loads(self.path.read_text() or "null")
            except (OSError, ValueError):
                owner = None
            if isinstance(owner, dict) or time.monotonic() > deadline:
                break
            time.sleep(0.05)  # the winner has the lock but has not written its name yet
        if not isinstance(owner, dict):
            return "another finops command"
        return (
            f"`{owner.get('command', 'finops')}` (pid {owner.get('pid', '?')}, "
            f"since {owner.get('started_at', '?')})"
        )


def _try_lock(descriptor: int) -> bool:
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _write_owner(descriptor: int, command: str) -> None:
    started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    payload = json.dumps({"command": command, "pid": os.getpid(), "started_at": started})
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, payload.encode(), 0)

"""`FlockLakeLock`: one writer per lake, held with flock(2) on the lake's folder itself.

The kernel drops the lock when the holding process ends, however it ends (SIGKILL included), so
a crashed writer never leaves the lake locked, and locking writes nothing into the lake (a
command that changes nothing leaves every file and folder as it was). A lake that does not
exist yet is locked through the nearest folder above it that does (the writer that creates it).
A second writer names the holder from the kernel's lock table (/proc/locks: its pid) and the
holder's command line (/proc/<pid>/cmdline).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path

from finops_core.errors import LakeBusy

PROC_LOCKS = Path("/proc/locks")


class FlockLakeLock:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def locked_folder(self) -> Path:
        """The lake's folder, or the nearest existing folder above it."""
        folder = self.root.absolute()
        while not folder.is_dir() and folder != folder.parent:
            folder = folder.parent
        return folder

    @contextlib.contextmanager
    def hold(self, *, wait: bool, waiting: Callable[[str], None]) -> Iterator[None]:
        folder = self.locked_folder()
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if not _try_lock(descriptor):
                holder = holder_of(folder)
                if not wait:
                    raise LakeBusy(
                        f"The lake {self.root} is being written by {holder}; wait for it to "
                        "finish, or run again without --no-wait to wait for it."
                    )
                waiting(f"waiting for {holder} to finish writing {self.root} ...")
                fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing the descriptor releases the lock


def _try_lock(descriptor: int) -> bool:
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def holder_of(folder: Path) -> str:
    """`finops batch --lake x` (pid 123) for the process holding a flock on `folder`."""
    pid = _locking_pid(folder)
    if pid is None:
        return "another finops command"
    return f"`{_command_line(pid)}` (pid {pid})"


def _locking_pid(folder: Path) -> int | None:
    """The pid /proc/locks gives for an flock on the folder's inode, if any."""
    status = folder.stat()
    device = f"{os.major(status.st_dev):02x}:{os.minor(status.st_dev):02x}:{status.st_ino}"
    try:
        lines = PROC_LOCKS.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF" ("->" marks a waiting request)
        if "->" in fields or len(fields) < 6 or fields[1] != "FLOCK" or fields[5] != device:
            continue
        if fields[4].isdigit():
            return int(fields[4])
    return None


def _command_line(pid: int) -> str:
    """The holder's command line, as `finops ...` when it is the finops CLI."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "another finops command"
    argv = [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    for position, part in enumerate(argv):
        if Path(part).name == "finops":
            return shlex.join(["finops", *argv[position + 1 :]])
        if part == "entrypoints.cli" and position > 0 and argv[position - 1] == "-m":
            return shlex.join(["finops", *argv[position + 1 :]])
    return shlex.join(argv) or "another finops command"

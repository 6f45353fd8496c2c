"""Spark's (JVM) errors that are OS errors, raised as OSError so the entry points report them as
they report any file error (a full disk is one sentence naming the lake, exit 8)."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator

# What the JVM says for the OS errors a lake write meets (java.io.IOException texts).
_JAVA_MESSAGES = {
    "No space left on device": errno.ENOSPC,
    "Disk quota exceeded": errno.EDQUOT,
}


@contextlib.contextmanager
def os_errors() -> Iterator[None]:
    """Re-raise a Spark or Py4J error whose Java cause is a full disk as OSError(ENOSPC)."""
    try:
        yield
    except OSError:
        raise
    except Exception as error:
        text = str(error)
        for message, code in _JAVA_MESSAGES.items():
            if message in text:
                raise OSError(code, os.strerror(code)) from error
        raise

"""Errors a person can act on: each message is one sentence saying what is wrong and what to do."""


class FinopsError(Exception):
    """Base of every error the CLI prints as one sentence (no traceback unless --verbose)."""

    exit_code = 1


class ConfigurationError(FinopsError):
    exit_code = 2


class DatasetMissing(FinopsError):
    exit_code = 3


class LandingRefused(FinopsError):
    exit_code = 4


class ServingUnavailable(FinopsError):
    exit_code = 5


class EngineUnavailable(FinopsError):
    exit_code = 6


class LakeBusy(FinopsError):
    """Another command is writing the lake (and this one was told not to wait)."""

    exit_code = 7


class StorageFailed(FinopsError):
    """The disk is full, or a path cannot be written: nothing to fix in the data."""

    exit_code = 8


class InvalidRow(FinopsError):
    """A row that no store may hold (a null or non-finite number in a required column)."""

    exit_code = 9

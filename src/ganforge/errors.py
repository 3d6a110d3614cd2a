"""Errors a user can fix. The CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """A mistake in the user's input: the message says what to do about it."""

    exit_code = 2


class ConfigError(UserError):
    """A config file, preset, key or value that ganforge cannot use."""


class DataError(UserError):
    """A dataset that cannot be found, read or used as asked."""


class CheckpointError(UserError):
    """A checkpoint that is missing, damaged, of another kind or unsafe to load."""


class RunDirError(UserError):
    """A run folder that cannot be used as asked (exists, missing, locked)."""


class MetricsError(UserError):
    """A metric, feature extractor or image set that cannot be scored as asked."""

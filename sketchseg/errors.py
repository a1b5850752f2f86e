"""Project exceptions: every message says what went wrong, where, and how to fix it."""

from __future__ import annotations


class SketchsegError(Exception):
    """Base class of all errors a user can act on. The CLI prints the message and exits with 2."""


class ConfigError(SketchsegError):
    """A configuration value is invalid or inconsistent with the model."""


class InputError(SketchsegError):
    """A user-supplied input (sketch image, category list, checkpoint path) is unusable."""


class DataError(SketchsegError):
    """A dataset file is missing, malformed or inconsistent with the layout contract (SPEC §6)."""


class CheckpointError(SketchsegError):
    """A checkpoint file is missing, unreadable or incompatible with this version."""

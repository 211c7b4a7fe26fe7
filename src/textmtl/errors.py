"""User-facing errors.

Every error a user can cause by bad input (a data file, a config key, a CLI argument) is a
:class:`TextMTLError`. The CLI prints its message on one line and exits non-zero, so the message
must name the file or key, what was expected and what was found.
"""

from __future__ import annotations


class TextMTLError(Exception):
    """Base class of errors caused by user input; the CLI prints them as one line."""

    def __str__(self) -> str:  # one line, whatever the caller passed
        return " ".join(super().__str__().split())


class ConfigError(TextMTLError):
    """An experiment config or a component's parameters are invalid."""


class DataError(TextMTLError):
    """A dataset or user data file is missing, malformed or inconsistent."""


class DownloadError(DataError):
    """A dataset could not be downloaded or failed its checksum."""


class TrainingError(TextMTLError):
    """Training cannot go on with these settings (e.g. a loss became NaN or infinite)."""

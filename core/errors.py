"""Domain exceptions shared by every layer: each message names the file, the row and the fix."""
from __future__ import annotations


class KgfusionError(Exception):
    """Base class for errors a user can act on (bad input, missing model, corrupt bundle)."""


class DataError(KgfusionError):
    """An input file is malformed: the message names the file, row/column and the fix."""


class ModelNotFoundError(KgfusionError):
    """A model directory or bundle is missing."""


class BundleError(KgfusionError):
    """A model bundle is corrupt, incomplete or of an unsupported version."""


class ConfigError(KgfusionError):
    """A configuration value is out of its allowed set."""


def missing_extra(module: str, extra: str) -> KgfusionError:
    """Error for a lazily imported optional dependency."""
    return KgfusionError(
        f"'{module}' is not installed. Install the extra: pip install 'kgfusion[{extra}]'"
    )

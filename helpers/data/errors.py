"""The data layer's errors (their own module, so the loaders and the KWS generator share them).

Taught in 00-overview. Imports nothing.
"""


class UnknownDatasetError(ValueError):
    """Raised for a dataset name that is not one of :func:`helpers.data.names`.
    Taught in 00-overview.
    """


class DatasetUnavailableError(RuntimeError):
    """Raised when a known dataset cannot be obtained (offline, package missing).
    Taught in 00-overview.
    """

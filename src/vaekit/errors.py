"""The one error type for bad input: the CLI prints its message on one line and exits with 2."""


class VaekitError(ValueError):
    """Bad input named in one line: a wrong path, a corrupt file, NaNs, a wrong shape, bad values."""

"""Errors that the command line reports as one line, without a traceback."""


class LpmatteError(Exception):
    """A user mistake or bad input: the CLI prints ``lpmatte: error: <message>`` and exits 2."""

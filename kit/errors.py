"""The base of every error that is a person's mistake (bad config, missing file) rather than a bug.

The CLI prints these as one clear message and exits non-zero, without a traceback.
"""


class KitError(Exception):
    pass

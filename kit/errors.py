"""The base of every error that is a person's mistake (bad config, missing file) rather than a bug.

The CLI prints these as one clear message and exits non-zero, without a traceback. Terminated lives here
too, not beside the signal handling in kit.run.launch, so that a command that never launches anything
(kit chat) need not import the launcher to catch it.
"""

import signal


class KitError(Exception):
    pass


class Terminated(BaseException):
    """SIGTERM or SIGHUP reached the launching process (kill, a job scheduler, a closed terminal).

    A BaseException, as KeyboardInterrupt is, so only the clean-up code catches it.
    """

    def __init__(self, signum: int):
        from kit.i18n import _

        self.name = signal.Signals(signum).name
        super().__init__(_("terminated by {signal}").format(signal=self.name))
        self.signum = signum

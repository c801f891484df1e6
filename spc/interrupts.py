"""How the `spc` command ends on Ctrl-C (SIGINT) and SIGTERM: like on an error, cleanly.

Python turns SIGINT into KeyboardInterrupt; spc turns SIGTERM into `Terminated` (a
KeyboardInterrupt), so that every cleanup on the way out runs for both (temporary files removed, Lava
workers stopped: `spc.runtime.lava.shutdown`), and the command exits 130 or 143.

Python cannot raise everywhere: an interrupt that arrives while a `__del__` method or an at-fork
callback runs (Lava forks a dozen processes, and `logging` has such a callback) is printed as
"Exception ignored" and dropped, and the program would go on as if never interrupted. Such a
dropped interrupt is delivered again a moment later, when the program is back in ordinary code.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

REDELIVERY_DELAY = 0.05
"""Seconds after a dropped interrupt before it is delivered again."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised wherever spc is."""


def _terminate(signum, frame):
    raise Terminated


def exit_status(interrupt: KeyboardInterrupt) -> int:
    """128 + the signal's number, as a shell reports a process ended by it."""
    return 128 + (signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)


@contextlib.contextmanager
def handled():
    """Within this block (the main thread), SIGTERM raises `Terminated`, and an interrupt Python
    had to drop is delivered again."""
    previous_handler = signal.signal(signal.SIGTERM, _terminate)
    previous_hook = sys.unraisablehook
    spc = os.getpid()

    def redeliver(unraisable):
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            return previous_hook(unraisable)
        if os.getpid() != spc:  # a child forked at that moment: its own policy (Lava's workers ignore it)
            return None
        signum = signal.SIGTERM if isinstance(unraisable.exc_value, Terminated) else signal.SIGINT
        timer = threading.Timer(REDELIVERY_DELAY, os.kill, (os.getpid(), signum))
        timer.daemon = True
        timer.start()

    sys.unraisablehook = redeliver
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        signal.signal(signal.SIGTERM, previous_handler)

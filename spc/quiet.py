"""Third-party messages that say nothing to an spc user, silenced on the command line.

Each entry is a message another package prints while spc uses it, about that package's own
optional features; none of them concerns the user's model or data. spc's own warnings are left alone.
"""

from __future__ import annotations

import logging

LOGGERS = {
    "torch._library.triton": "'Triton not available', logged when SpikingJelly loads on a machine without Triton (a GPU compiler spc does not use)",
}


def quiet_third_parties() -> None:
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)

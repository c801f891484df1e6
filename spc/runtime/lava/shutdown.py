"""How a Lava run ends, whatever ends it: nothing hangs, no worker outlives spc, nothing is left.

Lava runs every process model and its runtime service in processes it forks, beside a
shared-memory manager and a watchdog (a manager and two monitors). Left alone, a Ctrl-C sent to the
process group (what a terminal does) interrupts each of them mid-message and they wait for one
another for ever; a SIGTERM kills the workers but leaves managers and shared memory behind. So:

- every process forked while a run is `supervised` ignores SIGINT and SIGTERM (spc decides when
  its workers stop) and is killed by the kernel when spc dies (Linux `PR_SET_PDEATHSIG`), so none
  outlives spc even after a SIGKILL;
- a run that raises anything (an error, a KeyboardInterrupt, spc's SIGTERM handler) is torn down
  without waiting on workers that may never answer: they are killed, then Lava's shared-memory
  and watchdog managers shut down (which unlinks the shared memory), then any child left is
  killed. A run that ends normally is stopped by Lava's own `stop()`.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal

PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal a process receives when its parent dies."""

_supervised = 0  # > 0 while a supervised run may fork workers in this process
_parent = 0  # the pid that forked, recorded just before each fork


def _before_fork() -> None:
    global _parent
    _parent = os.getpid()


def _in_worker() -> None:
    """Runs in every child forked while a run is supervised."""
    if not _supervised:
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: workers are still stopped by tear_down
        pass
    if os.getppid() != _parent:  # spc died before the death signal was armed
        os._exit(1)


os.register_at_fork(before=_before_fork, after_in_child=_in_worker)


@contextlib.contextmanager
def supervised(process):
    """Run (and read) the Lava network of `process` (any of its processes) inside this block; if
    the block raises, the network is torn down before the exception goes on."""
    global _supervised
    _supervised += 1
    try:
        yield
    except BaseException:
        tear_down(process.runtime)
        raise
    finally:
        _supervised -= 1


@contextlib.contextmanager
def _signals_held():
    """A second Ctrl-C (or SIGTERM) must not interrupt the cleanup the first one started."""
    held = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in held.items():
            signal.signal(s, handler)


def _kill(child) -> None:
    if child.is_alive():
        os.kill(child.pid, signal.SIGKILL)
    multiprocessing.Process.join(child)


def tear_down(runtime) -> None:
    """Stop a Lava runtime (None: not created yet) that failed or was interrupted. Idempotent; a
    later `stop()` of the same runtime does nothing."""
    with _signals_held():
        if runtime is not None:
            infrastructure = getattr(runtime, "_messaging_infrastructure", None)
            for actor in getattr(infrastructure, "actors", ()):
                _kill(actor)
            if getattr(infrastructure, "smm", None) is not None:
                infrastructure.smm.shutdown()  # the manager unlinks every shared-memory segment
            if getattr(runtime, "_watchdog_manager", None) is not None:
                runtime._watchdog_manager.stop()
            runtime._is_started = runtime._is_running = False  # Runtime.stop() and __del__ now do nothing
        for child in multiprocessing.active_children():
            _kill(child)

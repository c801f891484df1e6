"""How a Lava run ends, whatever ends it: nothing hangs, no worker outlives spc, nothing is left.

Lava runs every process model and its runtime service in processes it forks, beside a
shared-memory manager and a watchdog (a manager and two monitors). Left alone, a Ctrl-C sent to the
process group (what a terminal does) interrupts each of them mid-message and they wait for one
another for ever; a SIGTERM kills the workers but leaves managers and shared memory behind. So:

- every process forked while a run starts (`workers`) ignores SIGINT and SIGTERM (spc decides when
  its workers stop; the signals are blocked during the fork, so none slips in before the child
  ignores them) and is killed by the kernel when spc dies (Linux `PR_SET_PDEATHSIG`), so none
  outlives spc even after a SIGKILL;
- a run that raises anything (an error, a KeyboardInterrupt, spc's SIGTERM handler), at any stage
  of its start, is torn down without waiting on workers that may never answer: they are killed,
  Lava's shared-memory manager shuts down (which unlinks the shared memory), and every other child
  (the watchdog's, a manager that never finished starting) is killed. A run that ends normally is
  stopped by Lava's own `stop()`. `LavaNetwork.close` chooses.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal

PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal a process receives when its parent dies."""

_supervised = 0  # > 0 while a run may fork workers in this process
_parent = 0  # the pid that forked, recorded just before each fork
_mask: set[int] = set()  # the signals blocked before the fork, restored after it
STOPPING = {signal.SIGINT, signal.SIGTERM}


def _before_fork() -> None:
    """A Ctrl-C or SIGTERM that arrives during a fork waits until the fork is done: in the child
    it then finds the signal ignored; in spc it is raised (see `spc.interrupts`)."""
    global _parent, _mask
    _parent = os.getpid()
    if _supervised:
        _mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOPPING)


def _after_fork_in_spc() -> None:
    if _supervised:
        signal.pthread_sigmask(signal.SIG_SETMASK, _mask)


def _in_worker() -> None:
    """Runs in every child forked while a run starts (last of the at-fork callbacks)."""
    if not _supervised:
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: workers are still stopped by tear_down
        pass
    signal.pthread_sigmask(signal.SIG_SETMASK, _mask)
    if os.getppid() != _parent:  # spc died before the death signal was armed
        os._exit(1)


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_spc, after_in_child=_in_worker)


@contextlib.contextmanager
def workers():
    """Start Lava's processes inside this block: each ignores SIGINT and SIGTERM and dies with spc."""
    global _supervised
    _supervised += 1
    try:
        yield
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
    """Stop a Lava runtime (None: not created yet) that failed or was interrupted, at any stage of
    its start. Idempotent; do not call the runtime's own `stop()` afterwards (`LavaNetwork.close` does not)."""
    with _signals_held():
        try:
            if runtime is not None:
                _stop(runtime)
        finally:
            for child in multiprocessing.active_children():  # whatever is left, managers that never finished starting included
                _kill(child)


def _stop(runtime) -> None:
    """Kill the workers, shut the shared-memory manager down (it unlinks every segment it made;
    one interrupted while starting made none and has no `shutdown` yet, so its process is killed
    with the rest), and disarm the watchdog, whose processes hold nothing and are killed too."""
    infrastructure = getattr(runtime, "_messaging_infrastructure", None)
    for actor in getattr(infrastructure, "actors", ()):
        _kill(actor)
    with contextlib.suppress(AttributeError):
        infrastructure.smm.shutdown()
    watchdog = getattr(runtime, "_watchdog_manager", None)
    if watchdog is not None:
        watchdog._mp_manager = None  # its stop(), registered with atexit, would wait on dead processes
    runtime._is_started = runtime._is_running = False  # Runtime.stop() and __del__ now do nothing

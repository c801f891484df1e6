"""Progress bars for long work: tqdm on standard error, shown only when it is a terminal (never in a
pipe, a log file or a test's captured output), and gone once the work is done."""

from __future__ import annotations

from tqdm import tqdm


def bar(total: int, desc: str, unit: str, enabled: bool = True, **options) -> tqdm:
    """A bar over `total` units; `enabled=False` hides it even on a terminal."""
    return tqdm(total=total, desc=desc, unit=unit, disable=None if enabled else True, leave=False, dynamic_ncols=True, **options)


class Stages:
    """A bar over the named stages of one piece of work: `start(name)` ends the stage before and
    shows the name of the next; leaving the `with` block ends the last."""

    def __init__(self, desc: str, total: int, enabled: bool = True):
        self.bar = bar(total, desc, "stage", enabled, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")
        self.started = False

    def start(self, name: str) -> None:
        if self.started:
            self.bar.update()
        self.started = True
        self.bar.set_postfix_str(name)

    def __enter__(self) -> Stages:
        return self

    def __exit__(self, *exc) -> None:
        if self.started and not any(exc):
            self.bar.update()
        self.bar.close()

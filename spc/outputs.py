"""Where spc writes, and how: one policy for every output path.

A file (`spc run -o`, `verify --json / --report`, `inspect --json`):
- `-` (or a path that is this process's standard output, like `/dev/stdout`) is standard output,
  written directly; messages for a person then go to standard error;
- an existing device, FIFO or socket (`/dev/null`, a named pipe), or a link to one,
  is opened and written, never replaced;
- anything else is a regular file: written to a temporary file beside it (beside the file a
  symbolic link points to) and renamed over it, so it holds the old contents or the new, never
  half; its mode follows the umask.

A directory (`spc compile -o`) is filled in a temporary sibling and renamed into place by a rename
that fails if something appeared at the path meanwhile (another compile): the first one wins, the
others stop with exit status 2 and touch nothing. An existing path needs `force`, and even then is
replaced only if it is an empty directory or one spc wrote (`owned`: its manifest, and only files
spc writes). Its mode follows the umask; missing parent directories are created.

Paths are checked when the output is declared, before any work starts (a directory given for a
file, a missing parent, a read-only place, an existing directory without --force); a write that
fails (a full disk) is exit status 2, "could not be written", with nothing left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from spc.errors import SpcError

STDOUT = "-"
DISK_FIX = "check free disk space and permissions"


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _probe(directory: Path, subject: str) -> None:
    """Create and remove a file in `directory`, so an unwritable place is refused before the work."""
    try:
        fd, name = tempfile.mkstemp(prefix=".spc-probe.", dir=directory)
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        raise SpcError(subject, f"cannot be written in {directory} ({e.strerror or e})", "choose a writable location") from None


def _failed(subject: str, e: OSError) -> SpcError:
    return SpcError(subject, f"could not be written ({e.strerror or e})", DISK_FIX)


class OutputFile:
    """A file output, checked now (see the module docstring), written by `write`."""

    def __init__(self, path: str | Path, flag: str):
        self.subject = f"{flag} {path}"
        self.path = None if str(path) == STDOUT else Path(path)
        if self.path is None:
            return
        try:
            if stat.S_ISDIR(os.stat(self.path).st_mode):
                raise SpcError(self.subject, "is a directory", "give the path of a file, e.g. DIR/out.npy")
        except (FileNotFoundError, NotADirectoryError):
            pass
        if self._direct():
            return
        parent = self._target().parent
        if not parent.is_dir():
            raise SpcError(self.subject, f"cannot be written: {parent} does not exist or is not a directory", f"create the directory first (mkdir -p {parent}) or choose another path")
        _probe(parent, self.subject)

    @property
    def is_stdout(self) -> bool:
        """`-`, or a path that is this process's standard output (`/dev/stdout`, `/proc/self/fd/1`)."""
        if self.path is None:
            return True
        try:
            here, out = os.stat(self.path), os.fstat(sys.stdout.fileno())
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):  # no stdout, or one without a file
            return False
        return (here.st_dev, here.st_ino) == (out.st_dev, out.st_ino)

    def _direct(self) -> bool:
        """Written in place: an existing path (or link to one) that is not a regular file."""
        try:
            return not stat.S_ISREG(os.stat(self.path).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            return False

    def _target(self) -> Path:
        """The regular file to replace: the path, or the file a symbolic link at it points to."""
        return Path(os.path.realpath(self.path))

    def write(self, fill: Callable[[BinaryIO], object]) -> None:
        """Write the output by `fill(binary file)`."""
        try:
            if self.is_stdout:
                fill(_Sequential(sys.stdout.buffer))
                sys.stdout.buffer.flush()
            elif self._direct():
                with open(self.path, "wb") as f:
                    fill(_Sequential(f))
            else:
                self._replace(self._target(), fill)
        except OSError as e:
            raise _failed(self.subject, e) from None

    def write_text(self, text: str) -> None:
        self.write(lambda f: f.write(text.encode()))

    @staticmethod
    def _replace(target: Path, fill) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            os.fchmod(fd, 0o666 & ~umask())
            with os.fdopen(fd, "wb") as f:
                fill(f)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class _Sequential:
    """Only the `write` of a stream (a pipe, a device): writers that would seek or ask a real file
    for its position (numpy's `tofile`) write it in order instead."""

    def __init__(self, stream: BinaryIO):
        self.write = stream.write


def human_stream(*outputs: OutputFile | None):
    """Where messages for a person go: standard error when an output is standard output."""
    return sys.stderr if any(o is not None and o.is_stdout for o in outputs) else sys.stdout


class OutputDirectory:
    """A directory output, checked now (see the module docstring), written by `write`. `owned(path)`
    returns the entries of an existing directory that spc did not write (None: no manifest of
    spc's at all)."""

    def __init__(self, path: str | Path, force: bool, owned: Callable[[Path], list[str] | None]):
        self.path, self.force, self.owned = Path(path), force, owned
        self.subject = f"output directory {self.path}"
        self.check()

    def check(self) -> None:
        if os.path.lexists(self.path):
            if not self.force:
                raise SpcError(self.subject, "already exists", "pass --force (Python: force=True) to replace it, or choose another path")
            self._check_replaceable(self.path)
        ancestor = self.path.parent
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise SpcError(self.subject, f"cannot be created: {ancestor} is not a directory", "choose another path")
        _probe(ancestor, self.subject)

    def _check_replaceable(self, path: Path) -> None:
        """Refuse to replace anything but an empty directory or one spc wrote."""
        if path.is_symlink() or not path.is_dir():
            raise SpcError(self.subject, "exists and is not a directory; --force replaces only a directory spc wrote", "choose another path")
        entries = sorted(os.listdir(path))
        if not entries:
            return
        foreign = self.owned(path)
        if foreign is None:
            raise SpcError(self.subject, f"is not a compiled model (no spc manifest.json; it holds {_listing(entries)}), so --force will not replace it", "choose another path, or empty it yourself")
        if foreign:
            raise SpcError(self.subject, f"holds files spc did not write ({_listing(foreign)}), so --force will not replace it", "move those files away, or choose another path")

    def write(self, fill: Callable[[Path], None]) -> Path:
        """Create the directory by `fill`ing a temporary sibling and renaming it into place."""
        self.check()  # again: the path may have changed while the model was compiled
        parent = self.path.parent
        try:
            created = _make_parents(parent)
        except OSError as e:
            raise SpcError(self.subject, f"cannot be created ({e.strerror or e})", "choose a writable location") from None
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=parent))
            try:
                fill(tmp)
                os.chmod(tmp, 0o777 & ~umask())
                self._move_into_place(tmp)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError as e:
            _remove_empty(created)
            raise _failed(self.subject, e) from None
        except BaseException:
            _remove_empty(created)
            raise
        return self.path

    def _move_into_place(self, tmp: Path) -> None:
        if not (self.force and os.path.lexists(self.path)):
            self._claim(tmp)
            return
        trash = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".old", dir=self.path.parent))
        old = trash / "replaced"
        try:
            with contextlib.suppress(FileNotFoundError):  # gone meanwhile: nothing to replace
                os.rename(self.path, old)
                try:
                    self._check_replaceable(old)  # it may have changed since the first check
                except SpcError:
                    try:
                        rename_exclusive(old, self.path)
                    except OSError:
                        trash = None  # keep it: it is the user's
                        raise SpcError(self.subject, f"changed while spc was working and could not be put back; it is now {old}", "move it back yourself") from None
                    raise
            self._claim(tmp)
        finally:
            if trash is not None:
                shutil.rmtree(trash, ignore_errors=True)

    def _claim(self, tmp: Path) -> None:
        try:
            rename_exclusive(tmp, self.path)
        except FileExistsError:
            raise SpcError(self.subject, "appeared while spc was working (another spc compile, or someone else, created it); it was left as it is", "choose another path, or pass --force once the other one is complete") from None


def _listing(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _make_parents(directory: Path) -> list[Path]:
    """mkdir -p, returning the directories it created (outermost first)."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for d in reversed(missing):
        d.mkdir()
    return list(reversed(missing))


def _remove_empty(directories: list[Path]) -> None:
    for d in reversed(directories):
        with contextlib.suppress(OSError):
            d.rmdir()


AT_FDCWD = -100
RENAME_NOREPLACE = 1
_renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)


def rename_exclusive(src: Path, dst: Path) -> None:
    """Rename `src` to `dst`, raising FileExistsError if `dst` exists: Linux's renameat2
    RENAME_NOREPLACE where the system and file system have it, else an exclusive mkdir of `dst`
    (the claim) and a rename over that empty directory."""
    if _renameat2 is not None:
        if _renameat2(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS):
            raise OSError(code, os.strerror(code), str(dst))
    os.mkdir(dst)
    os.rename(src, dst)

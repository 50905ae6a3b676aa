"""Output files: the one policy for refusing or replacing them, and the one atomic writer.

- A folder is never an output file; the folder an output goes into must exist.
- An existing file is kept unless `--force`; with `--force` only a regular file is replaced
  (never a device, a FIFO or a socket).
- The content is written to a temporary file beside the target and moved into place, so a
  failed or interrupted write (Ctrl-C, SIGTERM) changes nothing and leaves no temporary file.
- Without `--force` the final name is created exclusively: of two writers racing for one
  name, the second fails with "file exists" instead of silently replacing the first.
- The content is on disk (fsync) before the name appears. `write_folder` writes many files as one
  change, with one flush of the file system for all of them.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from archspec.errors import Mark, Problem, SpecError, shorten

# A temporary name is `.` + (a prefix of) the target's name + a random part + `.tmp`; the prefix is
# cut so that the whole stays within the 255 bytes most file systems allow in one name.
_TEMP_PREFIX_BYTES = 200


def _problem(path: Path, option: str, message: str) -> SpecError:
    return SpecError(Problem(Mark(shorten(str(path), 200)), option, message))


def check_output(
    path: str | os.PathLike[str],
    *,
    force: bool,
    option: str = "--out",
    reads: Sequence[tuple[str, str | os.PathLike[str] | None]] = (),
) -> Path:
    """Refuse an output that may not be written (before any slow work); return it as a Path. An output that is
    one of the files the command `reads` ((what it is, its path): its spec, its weights) is refused even with
    `force`."""
    target = Path(path)
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        info = None
    except ValueError:
        raise _problem(target, option, "the file name holds a NUL byte") from None
    except OSError as exc:
        raise _problem(target, option, _os_reason(exc)) from None
    if info is not None:
        if stat.S_ISDIR(info.st_mode) or (stat.S_ISLNK(info.st_mode) and target.is_dir()):
            raise _problem(target, option, "is a folder; give a file name")
        for noun, read in reads:
            if read is not None and _same_file(target, Path(read)):
                message = f"is {noun} this command reads; write to another file (--force replaces outputs, not inputs)"
                raise _problem(target, option, message)
        if not force:
            raise _problem(target, option, "file exists; pass --force to overwrite it")
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
            raise _problem(
                target,
                option,
                (
                    "is not a regular file (a device, FIFO or socket); archspec replaces regular files only, even with "
                    "--force"
                ),
            )
    folder = target.parent
    if not folder.is_dir():
        raise _problem(target, option, f"folder {shorten(str(folder), 200)!r} does not exist")
    return target


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def check_input_file(path: str | os.PathLike[str], *, option: str, noun: str) -> Path:
    """`path` as a Path when it names an existing regular file to read; anything else (missing, a folder, a FIFO
    that would block, a device that never ends, a loop of links) is a one-line error, before any slow work."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{option} must be a path (str or os.PathLike), not {type(path).__name__}")
    target = Path(path)
    try:
        info = os.stat(target)
    except FileNotFoundError:
        raise _problem(target, option, f"no such {noun}") from None
    except ValueError:
        raise _problem(target, option, "the file name holds a NUL byte") from None
    except OSError as exc:
        raise _problem(target, option, _os_reason(exc)) from None
    if stat.S_ISDIR(info.st_mode):
        raise _problem(target, option, f"is a folder, not a {noun}")
    if not stat.S_ISREG(info.st_mode):
        raise _problem(target, option, f"is not a regular file (a device, FIFO or socket); a {noun} is a regular file")
    return target


def check_no_link(path: Path, option: str = "--out") -> None:
    """Refuse `path` when it is a symbolic link: a folder archspec writes into is never left by a link inside it."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _problem(path, option, _os_reason(exc)) from None
    if stat.S_ISLNK(info.st_mode):
        raise _problem(
            path, option, "is a symbolic link; archspec does not follow links inside the folders it writes into"
        )


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ENAMETOOLONG:
        return "the file name is too long for the file system"
    if exc.errno == errno.ELOOP:
        return "the path is a loop of symbolic links"
    if exc.errno == errno.EACCES:
        return "permission denied"
    if exc.errno == errno.ENOTDIR:
        return "a part of the path is a file, not a folder"
    return f"cannot use this path: {exc.strerror or exc}"


def atomic_write(
    path: str | os.PathLike[str], write: Callable[[BinaryIO], object], *, force: bool = False, option: str = "--out"
) -> None:
    """Call `write(file_object)` on a temporary file beside `path`, then move it into place (see the module doc)."""
    target = check_output(path, force=force, option=option)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{_short_name(target)}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise _problem(
            target, option, f"cannot write in {shorten(str(target.parent), 200)!r}: {exc.strerror or exc}"
        ) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        _move_into_place(tmp, target, force, option)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _problem(
                target, option, f"cannot write the file: {exc.strerror or exc}; nothing was changed"
            ) from None
        raise


def _flush(folders: set[Path], files: list[str]) -> None:
    """Put the content of `files` on disk: one syncfs per file system of `folders` on Linux, else fsync each."""
    syncfs = _syncfs()
    if syncfs is not None:
        for folder in folders:
            fd = os.open(folder, os.O_RDONLY)
            try:
                if syncfs(fd) == 0:
                    continue
            finally:
                os.close(fd)
            break  # syncfs failed: fall back to fsync'ing each file
        else:
            return
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _syncfs() -> Callable[[int], int] | None:
    """libc's syncfs(2) (Linux), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        function: Callable[[int], int] = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    return function


def _move_into_place(tmp: str, target: Path, force: bool, option: str) -> None:
    if force:
        check_output(target, force=True, option=option)  # still a regular file (or nothing) just before
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)  # fails if the name exists: the exclusive create
    except FileExistsError:
        raise _problem(
            target, option, "file exists (another writer created it meanwhile); pass --force to overwrite it"
        ) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        # A file system without hard links: claim the name exclusively, then replace the empty claim.
        try:
            os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            raise _problem(
                target, option, "file exists (another writer created it meanwhile); pass --force to overwrite it"
            ) from None
        os.replace(tmp, target)
        return
    os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_folder(
    folder: str | os.PathLike[str], files: list[tuple[str, bytes]], *, force: bool, option: str = "--out"
) -> None:
    """Write `files` (name, content) into `folder` as one change: all of them, or (after an error, Ctrl-C or
    SIGTERM) nothing new (see `StagedFolder`)."""
    with StagedFolder(folder, force=force, option=option) as staged:
        for name, content in files:
            staged.add(name, content)
        staged.commit()


class StagedFolder:
    """Files written into `folder` as one change: each `add`ed file goes into a temporary folder as it comes,
    and `commit` puts them all in place; leaving the `with` block without a commit (an error, Ctrl-C, SIGTERM)
    removes the temporary folder, so nothing new appears.

    A new folder is written whole under a temporary name beside it and renamed into place. Into an existing
    folder the files are written under a temporary folder inside it; then every target is checked (with
    `force`, only regular files are replaced; without it, none may exist) before the first is replaced, and
    the renames run with Ctrl-C and SIGTERM held back until they are done. Before anything is moved, the file
    system is flushed once for all the files, so a name appears only with its whole content on disk.
    """

    def __init__(self, folder: str | os.PathLike[str], *, force: bool, option: str = "--out"):
        self.target = Path(folder)
        self.force = force
        self.option = option
        self._exists = self.target.is_dir()
        self._names: list[str] = []
        try:
            self._stage = tempfile.mkdtemp(
                prefix=f".{_short_name(self.target)}.",
                suffix=".tmp",
                dir=self.target if self._exists else self.target.parent,
            )
        except OSError as exc:
            raise _problem(self.target, option, f"cannot write in this folder: {exc.strerror or exc}") from None
        self._open = True

    def __enter__(self) -> StagedFolder:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if self._open:
            self._open = False
            shutil.rmtree(self._stage, ignore_errors=True)
        if isinstance(exc, OSError):
            raise _problem(
                self.target, self.option, f"cannot write the files: {exc.strerror or exc}; nothing was changed"
            ) from None

    def add(self, name: str, content: bytes) -> None:
        """Write one file (created with the mode a plain open() gives: one open, write and close)."""
        _write_new(os.path.join(self._stage, name), content)
        self._names.append(name)

    def commit(self) -> None:
        """Flush the files to disk and put them all in place."""
        stage = Path(self._stage)
        _flush({stage}, [os.path.join(self._stage, name) for name in self._names])
        if not self._exists:
            os.chmod(stage, 0o777 & ~_umask())
            with _signals_held():
                os.rename(stage, self.target)  # fails if a folder of that name appeared meanwhile
                self._open = False
            return
        for name in self._names:
            check_output(self.target / name, force=self.force, option=self.option)
        with _signals_held():
            for name in self._names:
                os.replace(stage / name, self.target / name)
            os.rmdir(stage)
            self._open = False


def _write_new(path: str, content: bytes) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, 0o666)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _short_name(path: Path) -> str:
    return path.name.encode("utf-8", "surrogateescape")[:_TEMP_PREFIX_BYTES].decode("utf-8", "ignore")


@contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block is done (on the main thread): each arriving is noted, and sent
    again once the block is over. Python runs a signal's handler on the main thread whichever thread the system
    gave the signal to (torch's threads, a pool's), so the handlers themselves are swapped, not the thread's mask."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []

    def note(signum: int, frame: object) -> None:
        arrived.append(signum)

    held: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)
    before = {number: signal.signal(number, note) for number in held}
    try:
        yield
    finally:
        for number, handler in before.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        for number in dict.fromkeys(arrived):
            signal.raise_signal(number)

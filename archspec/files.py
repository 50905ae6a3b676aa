"""Output files: the one policy for refusing or replacing them, and the one atomic writer.

- A folder is never an output file; the folder an output goes into must exist.
- An existing file is kept unless `--force`; with `--force` only a regular file is replaced
  (never a device, a FIFO or a socket).
- The content is written to a temporary file beside the target and moved into place, so a
  failed or interrupted write (Ctrl-C, SIGTERM) changes nothing and leaves no temporary file.
- Without `--force` the final name is created exclusively: of two writers racing for one
  name, the second fails with "file exists" instead of silently replacing the first.
- The content is on disk (fsync) before the name appears. `atomic_write_all` writes many files
  with one flush of the file system for all of them, then moves each into place.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from archspec.errors import Mark, Problem, SpecError, shorten

# A temporary name is `.` + (a prefix of) the target's name + a random part + `.tmp`; the prefix is
# cut so that the whole stays within the 255 bytes most file systems allow in one name.
_TEMP_PREFIX_BYTES = 200


def _problem(path: Path, option: str, message: str) -> SpecError:
    return SpecError(Problem(Mark(shorten(str(path), 200)), option, message))


def check_output(path: str | os.PathLike[str], *, force: bool, option: str = "--out") -> Path:
    """Refuse an output that may not be written (before any slow work); return it as a Path."""
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


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ENAMETOOLONG:
        return "the file name is too long for the file system"
    return f"cannot use this path: {exc.strerror or exc}"


def atomic_write(
    path: str | os.PathLike[str], write: Callable[[BinaryIO], object], *, force: bool = False, option: str = "--out"
) -> None:
    """Call `write(file_object)` on a temporary file beside `path`, then move it into place (see the module doc)."""
    target = check_output(path, force=force, option=option)
    name = target.name.encode("utf-8", "surrogateescape")[:_TEMP_PREFIX_BYTES].decode("utf-8", "ignore")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=target.parent)
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


def atomic_write_all(files: list[tuple[Path, bytes]], *, force: bool = False, option: str = "--out") -> None:
    """Write many files as `atomic_write` writes one, with one flush to disk for all of them: every content
    goes to a temporary file beside its target, the file system is flushed once (each file is fsync'ed
    where there is no `syncfs`), then each is moved into place. An interrupted or failed run leaves no
    temporary file; the files already moved into place stay."""
    pending: list[tuple[str, Path]] = []
    moved = 0
    try:
        for path, content in files:
            target = check_output(path, force=force, option=option)
            name = target.name.encode("utf-8", "surrogateescape")[:_TEMP_PREFIX_BYTES].decode("utf-8", "ignore")
            try:
                fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=target.parent)
            except OSError as exc:
                raise _problem(
                    target, option, f"cannot write in {shorten(str(target.parent), 200)!r}: {exc.strerror or exc}"
                ) from None
            pending.append((tmp, target))
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(content)
                os.chmod(tmp, 0o666 & ~_umask())
            except OSError as exc:
                raise _problem(
                    target, option, f"cannot write the file: {exc.strerror or exc}; nothing was changed"
                ) from None
        _flush({target.parent for _, target in pending}, [tmp for tmp, _ in pending])
        for tmp, target in pending:  # in order: the last file (samples.json, say) appears last
            try:
                _move_into_place(tmp, target, force, option)
            except OSError as exc:
                raise _problem(
                    target, option, f"cannot write the file: {exc.strerror or exc}; nothing was changed"
                ) from None
            moved += 1
    finally:
        for tmp, _ in pending[moved:]:
            if os.path.exists(tmp):
                os.unlink(tmp)


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

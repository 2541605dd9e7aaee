"""Files the sandbox writes that hold tokens, keys or personal data (the connection file, the CA and
TLS private keys, the state database, exported worlds): mode 0600, in directories it creates 0700,
whatever the umask. Directories that already exist keep their mode: they may be the user's own."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def make_private_dir(path: Path) -> None:
    """Create `path` and its missing parents with mode 0700."""
    missing: list[Path] = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            continue  # made meanwhile by someone else: theirs to keep as it is
        os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask


def write_private(path: Path, data: bytes) -> None:
    """Write atomically with mode 0600: a temporary file in the same directory, then rename."""
    make_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def private_file(path: Path) -> Path:
    """`path` readable by its owner only, created empty when missing: for files another library opens
    and would create by the umask (SQLite gives its journal the database file's mode)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)  # an older sandbox left it readable by everyone
        return path
    try:
        os.fchmod(fd, 0o600)  # the open's mode is filtered by the umask too
    finally:
        os.close(fd)
    return path

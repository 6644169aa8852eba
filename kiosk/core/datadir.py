"""The data folder (ledger, sessions, logs, exports, install secrets): readable by the kiosk's own user only.

Another account on a shared computer could otherwise copy the ledger or read the log. On POSIX systems
folders are made 700 and files 600, including those left more open by an older version; on Windows the
folder lives in the user's own profile (LOCALAPPDATA), which other standard users cannot read.
"""
import os
import stat
import tempfile
from pathlib import Path

POSIX = os.name == "posix"


def make_private(folder):
    """Create `folder` if needed and make it, and everything under it, owner-only."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not POSIX:
        return
    os.chmod(folder, 0o700)
    for root, dirs, files in os.walk(folder):  # never follows symlinks: a link out is left alone
        for name in dirs + files:
            path = os.path.join(root, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode):
                os.chmod(path, 0o700)
            elif stat.S_ISREG(mode):
                os.chmod(path, 0o600)


def private_file(path):
    """Make sure `path` exists as an owner-only file before another library opens it (SQLite gives its
    -wal and -shm files the database file's own permissions)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
    if POSIX:
        os.chmod(path, 0o600)
    return path


def write_private(path, data):
    """Write bytes to an owner-only file atomically: a reader sees the old file or the new one, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp makes it 600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

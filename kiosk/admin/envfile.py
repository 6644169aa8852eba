"""Writing `.env` from the screen: the keys changed in place, every other line kept, owner-only, atomically."""
import getpass
import hashlib
import os
import re
import subprocess
import tempfile
import threading
from pathlib import Path, PureWindowsPath

from kiosk.core.coded import Coded

WINDOWS = os.name == "nt"

# One save at a time in this process; revision() catches a save made meanwhile by another screen or process.
_lock = threading.Lock()


class EnvFileError(Coded):
    """The settings file cannot be written: its code and params say what to do (words.say). The file is left as
    it was."""


class StaleRevision(EnvFileError):
    """The file changed since the form was opened (someone else saved): nothing was written."""


def read_text(path):
    """The file's text, '' when there is none."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def revision(path):
    """A short fingerprint of the file as it is now, carried by a form so a second save cannot undo the first."""
    return hashlib.sha256(read_text(path).encode()).hexdigest()[:16]


def quote(value):
    """A value as python-dotenv reads it back exactly: single quotes, with backslash and quote escaped."""
    # python-dotenv expands ${NAME} even inside single quotes, and has no escape for it.
    value = re.sub(r"[\r\n]+", " ", str(value)).replace("${", "$ {")
    if re.fullmatch(r"[A-Za-z0-9_.,:/@+-]*", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def updated(text, changes):
    """`text` with each KEY=… line of `changes` replaced in place and the new keys appended at the end."""
    left = dict(changes)
    lines = text.splitlines()
    for i, line in enumerate(lines):
        found = re.match(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=", line)
        if found and found[1] in changes:
            key = found[1]
            # A key written twice: the last line counts for dotenv, so each line gets the new value.
            lines[i] = f"{key}={quote(changes[key])}"
            left.pop(key, None)
    if left:
        if lines and lines[-1].strip():
            lines.append("")
        lines.append("# Saved from the kiosk's own screen")
        lines += [f"{key}={quote(value)}" for key, value in left.items()]
    return "\n".join(lines) + "\n"


def save(path, changes, expected_revision=None):
    """Write `changes` into the file at `path`; returns the text it had before (to put back if need be).

    Raises StaleRevision when the file is not the one the form was opened on, EnvFileError when it cannot be
    written; either way the file is untouched. The new file replaces the old in one rename, after an fsync,
    so a power cut leaves one or the other, never half."""
    path = Path(path)
    with _lock:
        before = read_text(path)
        if expected_revision is not None and expected_revision != revision(path):
            raise StaleRevision("stale_revision", "Someone else saved the settings while this form was open. Nothing "
                                "was saved: the form now shows what they saved; make your change again.")
        write(path, updated(before, changes))
        return before


def owner_only_command(path, environ=os.environ):
    """The icacls call (Windows' own tool, by its full path) that leaves `path` readable by this user alone."""
    icacls = PureWindowsPath(environ.get("SystemRoot", r"C:\Windows")) / "System32" / "icacls.exe"
    user = "\\".join(part for part in (environ.get("USERDOMAIN"), environ.get("USERNAME") or getpass.getuser()) if part)
    # No inherited entries (beside the executable they often let every user read), and full control for this user.
    return [str(icacls), str(path), "/inheritance:r", "/grant:r", f"{user}:F"]


def _owner_only_on_windows(path):
    """On Windows mkstemp's 0600 means nothing: the file takes its folder's ACL. Give it one of its own."""
    try:
        subprocess.run(owner_only_command(path), check=True, capture_output=True, timeout=30)  # noqa: S603
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise OSError(f"icacls could not make the file owner-only ({exc})") from None


def write(path, text):
    """Replace the file with `text`, owner-only (0600, or on Windows an ACL for this user alone), atomically; raises
    EnvFileError."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp makes it 0600
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if WINDOWS:
            _owner_only_on_windows(tmp)  # before the rename: the keys are never under the name with a wider ACL
        os.replace(tmp, path)
        tmp = None
        if os.name == "posix":
            os.chmod(path, 0o600)
            folder = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)  # the rename itself survives a power cut
            finally:
                os.close(folder)
    except OSError as exc:
        raise EnvFileError("settings_unsaved", "Could not save the settings to %(path)s: %(why)s. Nothing was "
                           "changed. Let the kiosk's user write that folder (or set KIOSK_ENV_FILE to a file it may "
                           "write), then save again.", path=str(path), why=exc.strerror or str(exc)) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)

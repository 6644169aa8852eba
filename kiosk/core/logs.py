"""Logging to a rotating file in the data folder, with anything that looks like a key redacted."""
import logging
import os
import re
from logging.handlers import RotatingFileHandler
from pathlib import Path

from kiosk.core.datadir import make_private

SECRET = re.compile(r"\b(sk|rk|pk|whsec)_(test|live)?_?[A-Za-z0-9]{6,}")


def redact(text):
    """The text with every Stripe key and webhook secret replaced by a marker."""
    return SECRET.sub(lambda m: m.group(1) + "_…redacted", text)


class RedactingFilter(logging.Filter):
    """Replace Stripe keys and webhook secrets in log records with a marker."""

    def filter(self, record):
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info:
            # A traceback quotes exception messages and source lines, which may hold a key too.
            record.exc_text = redact(record.exc_text or logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class PrivateFileHandler(RotatingFileHandler):
    """A rotating log whose files only the kiosk's user can read (they name orders and payments)."""

    def _open(self):
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return os.fdopen(fd, self.mode.replace("w", "a"), encoding=self.encoding, errors=self.errors)


def setup_logging(data_dir, level=logging.INFO):
    """Log to data_dir/logs/kiosk.log (5 × 1 MB) and to stderr."""
    root = logging.getLogger()
    if any(getattr(h, "_kiosk", False) for h in root.handlers):
        return
    root.setLevel(level)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers = [logging.StreamHandler()]
    try:
        folder = Path(data_dir) / "logs"
        make_private(folder)
        handlers.append(PrivateFileHandler(folder / "kiosk.log", maxBytes=1_000_000, backupCount=5,
                                           encoding="utf-8"))
    except OSError:
        pass
    for handler in handlers:
        handler.setFormatter(fmt)
        handler.addFilter(RedactingFilter())
        handler._kiosk = True
        root.addHandler(handler)

"""Exports running in this kiosk process: at most LIMIT at once (downloads and saves alike), each made in a thread
of its own at a lower OS priority, so that a year's CSV or two never take the computer from the customers; and the
saves into the data folder, run in the background with their progress, since the kiosk's window cannot download a
file."""
import logging
import os
import queue
import secrets
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from contextlib import suppress
from pathlib import Path

from kiosk.core.datadir import make_private
from kiosk.ledger.db import LedgerUnavailable

log = logging.getLogger("kiosk.exports")

LIMIT = 2
KEEP = 8  # finished saves remembered, for the page that asks how one ended
# The nice value an export's thread runs at, so that it takes the processor from no other process (at 19 the export,
# holding the GIL while it waits for the processor, slowed the page more than at 0). What keeps the customers' pages
# as fast as when idle is Serving below: the processor was not the scarce thing, the GIL was.
NICE = 10
HANDED = 4  # chunks made ahead of the thread that sends them
# An export's thread stops while this process answers a request, and for QUIET after the last one (its answer still
# being sent, a keep-alive customer's next request on its way), but at most MAKE_WAY at a time, and then runs as long
# before it stops again: a request waiting seconds for Stripe, or steady traffic, leaves it half its speed. Measured
# on PostgreSQL at 1M orders, a customer's page took 2.7 ms; 10 ms beside a year's export made in this process; 2.7 ms
# beside one made in another process. The GIL was the cause: Python runs one thread at a time, switching every 5 ms
# when two want it, whatever their nice values, so the export took half of it from every page (switching every
# 0.1 ms still left 7 ms).
QUIET = 0.005
MAKE_WAY = 0.05


def lower_priority():
    """Run the calling thread, one of an export's own that ends with it, at NICE. Linux sets a nice value per
    thread; elsewhere it stays as it is (and only the GIL is given up now and then)."""
    if sys.platform.startswith("linux"):
        with suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)


_END = object()


def made_aside(make):
    """The chunks of `make()` (an iterable), made in a thread of its own at a lower priority and handed over a few
    at a time: the thread that sends them, which serves customers next, keeps its own priority (a thread's nice
    value cannot be put back). Closing this generator stops that thread and waits for it, which lets go of what
    `make()` holds (its cursors) at once."""
    handed, stop = queue.Queue(HANDED), threading.Event()

    def hand(item):
        while not stop.is_set():
            with suppress(queue.Full):
                handed.put(item, timeout=0.5)
                return True
        return False

    def run():
        lower_priority()
        chunks, last = None, _END
        try:
            chunks = iter(make())
            for chunk in chunks:
                if not hand(chunk):
                    return
        except Exception as exc:  # noqa: BLE001 - raised again in the thread that sends the chunks
            last = exc
        finally:
            closer = getattr(chunks, "close", None)
            if closer is not None:
                closer()
            hand(last)  # nothing, once stopped

    maker = threading.Thread(target=run, name="export-rows", daemon=True)
    maker.start()
    try:
        while (item := handed.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        maker.join()


class Serving:
    """The requests this process is answering, for exports to make way for (make_way)."""

    def __init__(self, quiet=QUIET, longest=MAKE_WAY):
        self.quiet, self.longest = quiet, longest
        self._lock = threading.Lock()
        self._count, self._ended, self._free_until = 0, float("-inf"), float("-inf")
        self._idle = threading.Event()
        self._idle.set()

    def begin(self):
        """A request is being answered."""
        with self._lock:
            self._count += 1
            self._idle.clear()

    def end(self):
        """A request begun has been answered."""
        with self._lock:
            self._count -= 1
            self._ended = time.monotonic()
            if not self._count:
                self._idle.set()

    def make_way(self):
        """Wait, the GIL given up, while requests are answered and for `quiet` after the last, at most `longest`;
        after waiting that long, go on for as long without waiting."""
        now = time.monotonic()
        if (not self._count and now - self._ended >= self.quiet) or now < self._free_until:
            return  # nobody waiting: what an export asks thousands of times a second
        deadline = now + self.longest
        while (left := deadline - time.monotonic()) > 0:
            if self._count:
                self._idle.wait(left)
                continue
            quiet = self._ended + self.quiet - time.monotonic()
            if quiet <= 0:
                return
            time.sleep(min(quiet, left))
        self._free_until = time.monotonic() + self.longest


serving = Serving()  # the process's one: the GIL it shares is the process's


class Slot:
    """One of the LIMIT places, held by an export until released (once, however often it is asked to)."""

    def __init__(self, places):
        self._places = places
        self._lock = threading.Lock()
        self._held = True

    def release(self):
        with self._lock:
            held, self._held = self._held, False
        if held:
            self._places.release()


class Save:
    """A CSV being saved into the data folder: how far it got (orders written of `total`) and how it ended."""

    def __init__(self, path, total):
        self.id = secrets.token_urlsafe(12)
        self.path = Path(path)
        self.total = total
        self.written = 0
        self.state = "running"  # then "done" or "failed"
        # failed: ("folder", the system's reason), ("ledger", what the database said) or ("other", the error)
        self.error = None
        self._ended = threading.Event()

    @property
    def percent(self):
        """How far it got, 0 to 100 (100 only once done)."""
        if self.state == "done":
            return 100
        return min(99, self.written * 100 // self.total) if self.total else 0

    def counted(self, orders):
        """`orders` as they are read, each one counted as written."""
        for order in orders:
            yield order
            self.written += 1

    def wait(self, seconds):
        """True once it has ended, waiting up to `seconds` for it."""
        return self._ended.wait(seconds)

    def run(self, chunks, slot):
        """Write `chunks` (bytes) to a temporary file beside the target, then put it in place; always ends the job
        and releases `slot`."""
        tmp = None
        lower_priority()  # this thread is the save's own
        try:
            make_private(self.path.parent)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")  # owner-only, as made
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
            tmp, self.state = None, "done"
        except OSError as exc:
            self.state, self.error = "failed", ("folder", exc.strerror or str(exc))
        except LedgerUnavailable as exc:
            self.state, self.error = "failed", ("ledger", str(exc))
        except Exception as exc:  # a bug, not the folder or the database: said, and logged in full
            log.exception("saving %s", self.path.name)
            self.state, self.error = "failed", ("other", str(exc))
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            closer = getattr(chunks, "close", None)
            if closer is not None:
                closer()  # a save that failed half-way gives its cursors back now
            slot.release()
            self._ended.set()


class Exports:
    """The LIMIT places and the saves of one kiosk process."""

    def __init__(self, limit=LIMIT, keep=KEEP):
        self._places = threading.BoundedSemaphore(limit)
        self._saves = OrderedDict()
        self._lock = threading.Lock()
        self.keep = keep

    def slot(self):
        """A Slot for one more export, or None while LIMIT are running."""
        return Slot(self._places) if self._places.acquire(blocking=False) else None

    def save(self, path, total, chunks, slot):
        """Start saving `chunks(save)` (an iterable of bytes, given the Save to count with) to `path` in a thread of
        its own, which releases `slot` when it ends; the Save, to ask how it goes."""
        job = Save(path, total)
        with self._lock:
            self._saves[job.id] = job
            ended = [key for key, s in self._saves.items() if s.state != "running"]
            for key in ended[:max(0, len(ended) - self.keep)]:
                del self._saves[key]
        try:
            threading.Thread(target=job.run, args=(chunks(job), slot), name=f"export-{job.id}", daemon=True).start()
        except BaseException as exc:
            job.state, job.error = "failed", ("other", str(exc))
            slot.release()
            raise
        return job

    def find(self, job_id):
        """The Save of that id, while it is remembered, or None."""
        with self._lock:
            return self._saves.get(job_id)

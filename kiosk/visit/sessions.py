"""Customer sessions, kept on this kiosk in their own SQLite file; the browser holds only a random id.

Why rows and not one saved dict: the old store wrote the whole session back at the end of every
request that touched it, so a request that began before staff pressed Lock, or before the idle reset,
could write its older copy afterwards and open the staff area again or bring a cart back. Here:

- what must never be undone has its own rows, changed by conditional SQL in one transaction each:
  cart lines (so two requests adding different books both count), checkout attempts (a history, so a
  paid order always shows its receipt to the session that paid), and the staff sign-in (Lock deletes the
  row; a request still running can only touch a row that exists, never bring one back);
- the few plain values left (flash messages) are written key by key, and only the keys a request changed;
  a visitor with no row carries them in a short-lived signed cookie instead, so a page anywhere on the
  machine sending cookieless requests makes no rows;
- a reset or a sign-in revokes the old id: its row stays as a tombstone for a day, every write to it is
  refused, and a request that arrives with it later is a new visitor that can write nothing old.

Only the SHA-256 of an id is stored, so a copy of the file lets nobody take over a live session.
A GET that changes nothing writes nothing: the CSRF token is derived from the id (security.py), and a
visitor without a cookie gets a row only once something is kept for them.
"""
import contextlib
import hashlib
import json
import secrets
import sqlite3
import threading
import time
from contextlib import contextmanager

from flask import current_app
from flask.sessions import SessionInterface, SessionMixin
from itsdangerous import BadSignature, URLSafeTimedSerializer

from kiosk.ledger.db import transaction

COOKIE = "kiosk_sid"
FLASH_COOKIE = "kiosk_note"
FLASH_MAX_AGE = 300  # a message waits this long for the page after a redirect
MAX_AGE = 24 * 3600
PRUNE_EVERY = 600  # seconds between sweeps of rows older than MAX_AGE

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,            -- SHA-256 of the cookie's id, never the id itself
    created REAL NOT NULL,
    updated REAL NOT NULL,
    revoked REAL                    -- reset or signed in under a new id: nothing may be written here again
);
CREATE INDEX IF NOT EXISTS sessions_updated ON sessions (updated);
CREATE TABLE IF NOT EXISTS session_values (
    session TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (session, key)
);
CREATE TABLE IF NOT EXISTS cart_lines (
    session TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    isbn TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (session, isbn)
);
CREATE TABLE IF NOT EXISTS checkout_attempts (
    id TEXT PRIMARY KEY,
    session TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    fingerprint TEXT NOT NULL,
    created REAL NOT NULL,
    paying REAL,                    -- set when its PaymentIntent is asked for: the cart is frozen from then
    closed REAL,                    -- paid or canceled: the cart is free again
    outcome TEXT CHECK (outcome IN ('paid', 'canceled'))
);
CREATE INDEX IF NOT EXISTS checkout_attempts_session ON checkout_attempts (session, created);
CREATE TABLE IF NOT EXISTS staff_signins (
    session TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    since REAL NOT NULL,
    seen REAL NOT NULL
);
"""
CHILD_TABLES = ("session_values", "cart_lines", "checkout_attempts", "staff_signins")
# The language a customer chose for their visit (a plain value): it goes with the session at the idle reset.
LANGUAGE = "language"
# A promotion code the customer gave, and a staff discount on their cart: they go with the session too.
PROMOTION_CODE = "promotion_code"
STAFF_DISCOUNT = "staff_discount"


def digest(sid):
    """What the store keeps of a session id."""
    return hashlib.sha256(sid.encode()).hexdigest()


class SessionEnded(Exception):
    """The session was reset (or signed in under a new id) while this request ran: nothing is written."""


class ServerSession(dict, SessionMixin):
    """The plain values of a session, remembering which keys this request changed."""

    def __init__(self, initial=None, sid=None, *, stored=False, cookie=False):
        super().__init__(initial or {})
        self.sid = sid
        self.key = digest(sid)
        self.stored = stored          # a live row existed when the request began
        self.had_cookie = cookie      # the browser sent this id
        self.changed = set()
        self.cookie_wanted = False    # a page got a CSRF token bound to this id: the browser must keep it
        self.ended = False            # revoked (here or by another request): write nothing more
        self.revoked_here = False     # this request ended it: its answer makes the browser forget the id
        self.new_sid = None           # set by rotate(): the id the browser gets instead

    @property
    def new(self):
        return not self.stored

    @property
    def modified(self):
        return bool(self.changed)

    @modified.setter
    def modified(self, value):
        pass  # Flask sets this; changes are tracked per key instead

    def __setitem__(self, key, value):
        self.changed.add(key)
        super().__setitem__(key, value)

    def __delitem__(self, key):
        self.changed.add(key)
        super().__delitem__(key)

    def pop(self, key, *default):
        if key in self:
            self.changed.add(key)
        return super().pop(key, *default)

    def setdefault(self, key, default=None):
        if key not in self:
            self.changed.add(key)
        return super().setdefault(key, default)

    def clear(self):
        self.changed.update(self.keys())
        super().clear()

    def update(self, *args, **kwargs):
        for key, value in dict(*args, **kwargs).items():
            self[key] = value


class Store:
    """The sessions file: one connection per thread, kept open (opening one costs more than a query)."""

    def __init__(self, path):
        self.path = str(path)
        self._local = threading.local()
        self._pruned = 0.0
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.executescript(SCHEMA)
        finally:
            db.close()

    def db(self):
        """This thread's connection."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA foreign_keys = ON")
            # A session write that is lost to a power cut costs a customer a cart line, never money.
            db.execute("PRAGMA synchronous = NORMAL")
            self._local.db = db
        return db

    def transaction(self):
        """BEGIN IMMEDIATE … COMMIT on this thread's connection: writers to the sessions file take turns."""
        return transaction(self.db())

    def load(self, key):
        """(revoked, values) of a stored session, or None when there is no row."""
        db = self.db()
        row = db.execute("SELECT revoked, updated FROM sessions WHERE id = ?", (key,)).fetchone()
        if row is None:
            return None
        if row["revoked"] is not None or time.time() - row["updated"] > MAX_AGE:
            return True, {}  # ended, or too old to bring back: the browser gets a new id
        values = {r["key"]: json.loads(r["value"])
                  for r in db.execute("SELECT key, value FROM session_values WHERE session = ?", (key,))}
        return False, values

    @contextmanager
    def writing(self, session):
        """A transaction on a live session, its row made on the first write; raises SessionEnded if it ended."""
        if session.ended:
            raise SessionEnded
        now = time.time()
        with self.transaction() as db:
            # A tombstone is never brought back: ON CONFLICT only refreshes a live row.
            db.execute("INSERT INTO sessions (id, created, updated) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE "
                       "SET updated = excluded.updated WHERE revoked IS NULL", (session.key, now, now))
            if db.execute("SELECT revoked FROM sessions WHERE id = ?", (session.key,)).fetchone()[0] is not None:
                session.ended = True
                raise SessionEnded
            yield db
        session.stored = True
        if now - self._pruned > PRUNE_EVERY:
            self._pruned = now
            with self.transaction() as db:
                db.execute("DELETE FROM sessions WHERE updated < ?", (now - MAX_AGE,))

    def save_values(self, session):
        """Write the plain values this request changed (and only those)."""
        with self.writing(session) as db:
            for key in sorted(session.changed):
                if key in session:
                    db.execute("INSERT OR REPLACE INTO session_values (session, key, value) VALUES (?, ?, ?)",
                               (session.key, key, json.dumps(session[key])))
                else:
                    db.execute("DELETE FROM session_values WHERE session = ? AND key = ?", (session.key, key))
        session.changed.clear()

    def keep(self, session, key, value):
        """Write one plain value now, making the session's row if it has none (a cookie cannot carry it); raises
        SessionEnded."""
        session[key] = value
        self.save_values(session)

    def revoke(self, session):
        """End a session for good: its rows go, and its id stays refused (if the browser had it)."""
        now = time.time()
        session.ended = session.revoked_here = True
        session.changed.clear()
        if not (session.stored or session.had_cookie):
            return
        with self.transaction() as db:
            db.execute("INSERT INTO sessions (id, created, updated, revoked) VALUES (?, ?, ?, ?) ON CONFLICT (id) "
                       "DO UPDATE SET revoked = excluded.revoked, updated = excluded.updated",
                       (session.key, now, now, now))
            for table in CHILD_TABLES:
                db.execute(f"DELETE FROM {table} WHERE session = ?", (session.key,))

    def rotate(self, session):
        """Move a session to a new id (signing in), revoking the old one; returns the new id."""
        sid = secrets.token_urlsafe(32)
        key, now = digest(sid), time.time()
        with self.writing(session) as db:
            db.execute("INSERT INTO sessions (id, created, updated) VALUES (?, ?, ?)", (key, now, now))
            for table in CHILD_TABLES:
                db.execute(f"UPDATE {table} SET session = ? WHERE session = ?", (key, session.key))
            db.execute("UPDATE sessions SET revoked = ? WHERE id = ?", (now, session.key))
        session.sid, session.key, session.new_sid = sid, key, sid
        return sid

    # --- the cart ------------------------------------------------------------------------------------------

    def cart(self, key):
        """{isbn: quantity} of a session's cart."""
        return {r["isbn"]: r["quantity"] for r in
                self.db().execute("SELECT isbn, quantity FROM cart_lines WHERE session = ?", (key,))}

    def cart_count(self, key):
        """How many books are in a session's cart."""
        return self.db().execute("SELECT COALESCE(SUM(quantity), 0) FROM cart_lines WHERE session = ?",
                                 (key,)).fetchone()[0]

    @staticmethod
    def write_cart(db, key, before, after):
        """Write the lines that differ between two versions of a cart, in the caller's transaction."""
        for isbn in before.keys() - after.keys():
            db.execute("DELETE FROM cart_lines WHERE session = ? AND isbn = ?", (key, isbn))
        for isbn, quantity in after.items():
            if before.get(isbn) != quantity:
                db.execute("INSERT OR REPLACE INTO cart_lines (session, isbn, quantity) VALUES (?, ?, ?)",
                           (key, isbn, quantity))

    # --- checkout attempts ---------------------------------------------------------------------------------

    @staticmethod
    def latest_attempt(db, key):
        """The session's newest checkout attempt row, or None."""
        return db.execute("SELECT * FROM checkout_attempts WHERE session = ? ORDER BY created DESC, rowid DESC "
                          "LIMIT 1", (key,)).fetchone()

    @staticmethod
    def open_attempt(db, key, attempt_id, fingerprint, now):
        """Write a new checkout attempt for a session's priced cart (its fingerprint), in the caller's `writing`."""
        db.execute("INSERT INTO checkout_attempts (id, session, fingerprint, created) VALUES (?, ?, ?, ?)",
                   (attempt_id, key, fingerprint, now))

    @staticmethod
    def start_paying(db, attempt_id, now):
        """Mark an attempt as paying (its cart frozen from now), once, in the caller's `writing`."""
        db.execute("UPDATE checkout_attempts SET paying = ? WHERE id = ? AND paying IS NULL", (now, attempt_id))

    @staticmethod
    def close_attempt(db, key, attempt_id, outcome, now):
        """Close a session's open attempt as paid or canceled, in the caller's `writing`; True if this closed it."""
        return db.execute("UPDATE checkout_attempts SET closed = ?, outcome = ? WHERE id = ? AND session = ? "
                          "AND closed IS NULL", (now, outcome, attempt_id, key)).rowcount > 0

    def has_attempt(self, key, attempt_id):
        """True when `attempt_id` was one of this session's checkout attempts."""
        return self.db().execute("SELECT 1 FROM checkout_attempts WHERE id = ? AND session = ?",
                                 (attempt_id, key)).fetchone() is not None

    def has_anything(self, key):
        """True when a session still holds a cart, an attempt or a chosen language (a reset did not finish)."""
        db = self.db()
        return any(db.execute(f"SELECT 1 FROM {t} WHERE session = ? LIMIT 1", (key,)).fetchone()
                   for t in ("cart_lines", "checkout_attempts")) or \
            db.execute("SELECT 1 FROM session_values WHERE session = ? AND key IN (?, ?, ?)",
                       (key, LANGUAGE, PROMOTION_CODE, STAFF_DISCOUNT)).fetchone() is not None

    # --- staff sign-in -------------------------------------------------------------------------------------

    @staticmethod
    def staff_sign_in(db, key, now):
        """A staff sign-in for a session, in the caller's `writing` (after rotate(): a fresh id)."""
        db.execute("INSERT OR REPLACE INTO staff_signins (session, since, seen) VALUES (?, ?, ?)", (key, now, now))

    def staff_touch(self, key, now, idle):
        """Refresh a staff sign-in used within `idle` seconds; returns 'in', 'expired' or 'out'.

        An UPDATE, never an upsert: a request that began before Lock cannot bring the sign-in back."""
        with self.transaction() as db:
            if db.execute("UPDATE staff_signins SET seen = ? WHERE session = ? AND seen >= ?",
                          (now, key, now - idle)).rowcount:
                return "in"
            gone = db.execute("DELETE FROM staff_signins WHERE session = ?", (key,)).rowcount
        return "expired" if gone else "out"

    def staff_signed_in(self, key):
        """True while a sign-in row exists (for templates; the guard uses staff_touch)."""
        return self.db().execute("SELECT 1 FROM staff_signins WHERE session = ?", (key,)).fetchone() is not None

    def staff_sign_out(self, key):
        """Delete a staff sign-in; True if there was one."""
        with self.transaction() as db:
            return db.execute("DELETE FROM staff_signins WHERE session = ?", (key,)).rowcount > 0

    def close(self):
        """Close this thread's connection."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


def store():
    """The running app's session store."""
    return current_app.extensions["sessions"]


def _well_formed(sid):
    return 20 <= len(sid) <= 64 and sid.isascii() and all(c.isalnum() or c in "-_" for c in sid)


class KioskSessionInterface(SessionInterface):
    """Flask's session on top of the Store."""

    @staticmethod
    def _notes(app):
        return URLSafeTimedSerializer(app.secret_key, salt="kiosk-notes")

    def open_session(self, app, request):
        sid = request.cookies.get(COOKIE, "")
        session = None
        if _well_formed(sid):
            loaded = app.extensions["sessions"].load(digest(sid))
            if loaded is None:
                # An id this kiosk handed out with a page, with nothing kept yet: keep using it.
                session = ServerSession(sid=sid, cookie=True)
            elif not loaded[0]:
                return ServerSession(loaded[1], sid=sid, stored=True, cookie=True)
        if session is None:
            session = ServerSession(sid=secrets.token_urlsafe(32))
        notes = request.cookies.get(FLASH_COOKIE)
        if notes:
            with contextlib.suppress(BadSignature, ValueError, TypeError):  # forged or stale: no message
                dict.update(session, self._notes(app).loads(notes, max_age=FLASH_MAX_AGE))
            session.changed.add("_flashes")  # read once: the cookie goes with this answer
        return session

    def save_session(self, app, session, response):
        cookie_args = {"domain": self.get_cookie_domain(app), "path": self.get_cookie_path(app)}
        if session.ended:
            # Only the request that ended it: a late answer must not delete the next customer's cookie.
            if session.revoked_here:
                response.delete_cookie(COOKIE, **cookie_args)
            return
        if session.changed and session.stored:
            try:
                app.extensions["sessions"].save_values(session)
            except SessionEnded:
                return
        elif session.changed:
            # No row (nothing kept for this visitor yet): a message for the next page rides in a cookie.
            notes = {k: session[k] for k in ("_flashes",) if session.get(k)}
            if notes:
                response.set_cookie(FLASH_COOKIE, self._notes(app).dumps(notes), max_age=FLASH_MAX_AGE,
                                    httponly=True, samesite="Strict", secure=self.get_cookie_secure(app),
                                    **cookie_args)
            else:
                response.delete_cookie(FLASH_COOKIE, **cookie_args)
        if session.new_sid or (not session.had_cookie and (session.stored or session.cookie_wanted)):
            response.set_cookie(COOKIE, session.sid, httponly=True, samesite="Strict",
                                secure=self.get_cookie_secure(app), **cookie_args)


def init_app(app, path):
    """Open the sessions file and install the interface."""
    app.extensions["sessions"] = Store(path)
    app.session_interface = KioskSessionInterface()

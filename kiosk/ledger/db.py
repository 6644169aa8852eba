"""The ledger's database: SQLite in the data folder for one kiosk, or PostgreSQL (KIOSK_DATABASE_URL) for several.

One code path for both, through SQLAlchemy Core and (for PostgreSQL) psycopg 3. The kiosk's SQL is written
once, with `?` placeholders, in the subset both databases share (ON CONFLICT, RETURNING, CHECK); a
request takes a pooled connection and gives it back at teardown. Statements run on their own (autocommit)
unless inside `transaction(db)`, which is one BEGIN … COMMIT: BEGIN IMMEDIATE on SQLite, so writers take
turns; on PostgreSQL, rows are changed by conditional updates and the CHECKs decide any race.

When the database does not answer (PostgreSQL stopped, the network down, a lock held too long) a
LedgerUnavailable says so, after a few seconds at most: the shop keeps browsing and checkout says
payments are paused; the pool reconnects by itself when the database is back.
"""
import functools
import logging
import random
import re
import threading
import time
from contextlib import contextmanager, suppress
from typing import ClassVar

from flask import current_app, g

from kiosk.core.coded import Coded

log = logging.getLogger("kiosk.db")




class LedgerUnavailable(Exception):
    """The ledger's database does not answer; the message is for staff (customers are told payments pause)."""


class LedgerError(Coded, ValueError):
    """A staff action the ledger cannot record: its code and params say why (words.say), str() for the log."""


class LedgerConflict(LedgerUnavailable):
    """PostgreSQL broke off a transaction to end a deadlock, a serialization conflict or a lock wait too long:
    nothing of it was written, and running it again is safe (retry_conflicts)."""


# SQLSTATEs after which the whole transaction may simply run again: deadlock_detected, serialization_failure,
# lock_not_available (lock_timeout).
CONFLICT_STATES = frozenset({"40P01", "40001", "55P03"})
CONFLICT_TRIES = 4


def retry_conflicts(fn):
    """Run `fn`, one ledger transaction of its own, again when PostgreSQL broke it off (LedgerConflict).

    Every stock row is locked in ISBN order, after its order's row, so two counters should never deadlock; this
    is for what the database may still do, so that no customer, paid or paying, is ever shown it."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        for attempt in range(1, CONFLICT_TRIES + 1):
            try:
                return fn(*args, **kwargs)
            except LedgerConflict as conflict:
                if attempt == CONFLICT_TRIES:
                    raise
                log.warning("%s: %s; running it again (%d)", fn.__name__, conflict, attempt)
                time.sleep(random.uniform(0.005, 0.03) * attempt)  # noqa: S311 (jitter, not a secret)
        raise AssertionError("unreachable")
    return run


class IntegrityError(Exception):
    """A write the schema refused: a CHECK, a unique key or a foreign key."""


class Row(tuple):
    """A result row, read by position or by column name (as sqlite3.Row is)."""

    __slots__ = ()
    _index: ClassVar[dict] = {}  # each result's own subclass sets its columns

    def __getitem__(self, key):
        return tuple.__getitem__(self, self._index[key] if isinstance(key, str) else key)

    def keys(self):
        return list(self._index)

    def get(self, key, default=None):
        return self[key] if key in self._index else default


_row_types = {}


def _row_type(names):
    """The Row subclass for one set of column names, made once (a page runs the same statements again)."""
    names = tuple(names)
    found = _row_types.get(names)
    if found is None:
        if len(_row_types) > 500:
            _row_types.clear()
        index = {name: i for i, name in enumerate(names)}
        found = _row_types[names] = type("Row", (Row,), {"__slots__": (), "_index": index})
    return found


class Result:
    """The answer to one statement: rows as Row, rowcount for writes."""

    def __init__(self, rowcount, names=None, rows=()):
        self.rowcount = rowcount
        self._rows = None
        if names is not None:
            row_type = _row_type(names)
            self._rows = [row_type(r) for r in rows]

    @classmethod
    def of(cls, result):
        """From an SQLAlchemy result."""
        if result.returns_rows:
            return cls(result.rowcount, result.keys(), result.fetchall())
        return cls(result.rowcount)

    @classmethod
    def of_cursor(cls, cursor):
        """From a sqlite3 cursor."""
        if cursor.description is not None:
            return cls(cursor.rowcount, [d[0] for d in cursor.description], cursor.fetchall())
        return cls(cursor.rowcount)

    def fetchone(self):
        return self._rows[0] if self._rows else None

    def fetchall(self):
        return list(self._rows or [])

    def __iter__(self):
        return iter(self._rows or [])


_QMARK = re.compile(r"\?")
# Rows a stream fetches at a time: enough to keep round trips few, small enough that a year's export stays light.
STREAM_ROWS = 500
# A snapshot for streams: the rows of several cursors read together agree, and nothing is locked (SQLite's plain
# BEGIN takes no write lock; its snapshot starts at the first read).
READ_BEGIN = {"sqlite": "BEGIN", "postgresql": "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"}


def _named(sql, params):
    """A statement's `?` placeholders as SQLAlchemy's named ones (:p0, :p1...), with the values bound to them."""
    values = list(params)
    names = iter(range(len(values)))
    return _QMARK.sub(lambda m: f":p{next(names)}", sql), {f"p{i}": v for i, v in enumerate(values)}


class LedgerConnection:
    """One pooled connection to the ledger, with `execute(sql, params)` as the kiosk's code uses it."""

    def __init__(self, ledger):
        self.ledger = ledger
        self.dialect = ledger.dialect
        self.begin = "BEGIN IMMEDIATE" if ledger.dialect == "sqlite" else "BEGIN"
        # Lock a row read inside a transaction until it commits (SQLite's BEGIN IMMEDIATE locks it all).
        self.for_update = "" if ledger.dialect == "sqlite" else " FOR UPDATE"
        self._conn = None  # taken from the pool at the first statement: a page that needs none takes none
        self._raw = None  # its sqlite3 connection, for SQLite

    @property
    def connection(self):
        """The SQLAlchemy connection, taken from the pool on first use; raises LedgerUnavailable."""
        if self._conn is None:
            self._conn = self.ledger.checkout()
        return self._conn

    def execute(self, sql, params=()):
        """Run one statement; `?` placeholders take `params` in order."""
        if self.dialect == "sqlite" and not isinstance(params, dict):
            return self._execute_sqlite(sql, params)
        from sqlalchemy import exc, text
        if isinstance(params, dict):
            bound = params
        else:
            sql, bound = _named(sql, params)
        try:
            return Result.of(self.connection.execute(text(sql), bound))
        except exc.IntegrityError as error:
            raise IntegrityError(str(error.orig)) from None
        except (exc.OperationalError, exc.InterfaceError) as error:
            if getattr(error.orig, "sqlstate", None) in CONFLICT_STATES:
                raise LedgerConflict(str(error.orig).strip().splitlines()[0][:200]) from None
            raise self.ledger.unavailable(error) from None

    def _execute_sqlite(self, sql, params):
        # sqlite3 takes `?` itself: straight to the driver, without SQLAlchemy's statement machinery, which
        # cost more than the statements (create-intent runs about eleven). Same connection, same transaction.
        import sqlite3
        if self._raw is None:
            self._raw = self.connection.connection.driver_connection
        try:
            return Result.of_cursor(self._raw.execute(sql, tuple(params)))
        except sqlite3.IntegrityError as error:
            raise IntegrityError(str(error)) from None
        except (sqlite3.OperationalError, sqlite3.InterfaceError) as error:
            raise self.ledger.unavailable(error) from None

    def stream(self, sql, params=(), size=STREAM_ROWS):
        """The rows of one SELECT as they are iterated, `size` at a time, never all at once: for a range too big to
        hold. PostgreSQL reads them from a server-side cursor, which lives in a transaction (Ledger.reading());
        SQLite's cursor steps through the rows itself. Closing the generator closes the cursor."""
        import sqlite3

        from sqlalchemy import exc, text
        done = None
        try:
            if self.dialect == "sqlite":
                if self._raw is None:
                    self._raw = self.connection.connection.driver_connection
                cursor = self._raw.execute(sql, tuple(params))
                names, fetch, done = [d[0] for d in cursor.description], cursor.fetchmany, cursor.close
            else:
                named, bound = _named(sql, params)
                result = self.connection.execute(text(named), bound,
                                                 execution_options={"stream_results": True, "yield_per": size})
                names, fetch, done = list(result.keys()), result.fetchmany, result.close
            row_type = _row_type(names)
            while batch := fetch(size):
                yield from map(row_type, batch)
        except (sqlite3.Error, exc.DBAPIError) as error:
            if getattr(getattr(error, "orig", None), "sqlstate", None) in CONFLICT_STATES:
                raise LedgerConflict(str(error.orig).strip().splitlines()[0][:200]) from None
            raise self.ledger.unavailable(error) from None
        finally:
            if done is not None:
                with suppress(sqlite3.Error, exc.DBAPIError):  # a dropped connection took its cursor with it
                    done()

    def close(self):
        """Give the connection back to the pool."""
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                log.debug("closing a dropped ledger connection", exc_info=True)
            self._conn = None
            self._raw = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Ledger:
    """The ledger's engine: its dialect, its pool and its timeouts."""

    def __init__(self, url):
        from sqlalchemy import create_engine, event

        self.url = str(url)
        self.dialect = "postgresql" if self.url.startswith(("postgresql:", "postgres:")) else "sqlite"
        if self.dialect == "sqlite":
            # Opened connections are kept (each read the schema once); SQLite's own lock makes writers take turns.
            self.engine = create_engine(f"sqlite:///{self.url}", isolation_level="AUTOCOMMIT", pool_size=8,
                                        max_overflow=24, pool_timeout=10,
                                        connect_args={"timeout": 10, "check_same_thread": False})

            @event.listens_for(self.engine, "connect")
            def pragmas(dbapi, record):
                dbapi.execute("PRAGMA foreign_keys = ON")
                dbapi.execute("PRAGMA busy_timeout = 10000")
                # WAL with synchronous=NORMAL, SQLite's advice for WAL: a commit survives the kiosk crashing or
                # being killed, and the file never corrupts; only a power cut may undo the last moment's commits.
                # Those the reconciler puts back from Stripe (paid intents carry kiosk_id, order_ref and items).
                # FULL cost an fsync per commit: 8 of the 10 ms create-intent took here (bench/README.md).
                dbapi.execute("PRAGMA synchronous = NORMAL")
        else:
            # Seconds, not minutes: a counter whose database is down says so quickly and keeps browsing.
            self.engine = create_engine(
                re.sub(r"^postgres(ql)?:", "postgresql+psycopg:", self.url), isolation_level="AUTOCOMMIT",
                pool_size=8, max_overflow=24, pool_timeout=5, pool_pre_ping=True, pool_recycle=300,
                connect_args={"connect_timeout": 3,
                              "options": "-c statement_timeout=10000 -c lock_timeout=5000 "
                                         "-c idle_in_transaction_session_timeout=30000"})

    def checkout(self):
        from sqlalchemy import exc
        try:
            return self.engine.connect()
        except (exc.OperationalError, exc.InterfaceError, exc.TimeoutError) as error:
            raise self.unavailable(error) from None

    def unavailable(self, error):
        """The LedgerUnavailable to raise for a driver error, with the cause for the log (never the password)."""
        cause = str(getattr(error, "orig", error)).strip().splitlines()[0][:200]
        log.warning("ledger database not answering: %s", cause)
        return LedgerUnavailable(f"The shop's database ({self.describe()}) is not answering: {cause}")

    def describe(self):
        """Which database this is, for --check and the staff screen, without the password."""
        if self.dialect == "sqlite":
            return f"SQLite {self.url}"
        from sqlalchemy.engine import make_url
        u = make_url(self.engine.url)
        return f"PostgreSQL {u.database} at {u.host}:{u.port or 5432} as {u.username}"

    def connect(self):
        """A connection from the pool; close it (or use `with`) to give it back."""
        return LedgerConnection(self)

    @contextmanager
    def reading(self):
        """`with ledger.reading() as db:` a connection of its own holding one read-only snapshot, for streams
        (LedgerConnection.stream): taken at the block's start, rolled back and given back at its end, however it
        ends (a generator closed because the client went away ends it too)."""
        with self.connect() as db:
            db.execute(READ_BEGIN[self.dialect])
            try:
                yield db
            finally:
                with suppress(LedgerUnavailable):  # the connection is gone, and the snapshot with it
                    db.execute("ROLLBACK")

    def stream(self, sql, params=(), size=STREAM_ROWS):
        """The rows of one SELECT as they are iterated (LedgerConnection.stream), on a connection taken at the
        first row and given back at the last, or when the generator is closed."""
        with self.reading() as db:
            yield from db.stream(sql, params, size)

    def dispose(self):
        """Close every pooled connection."""
        self.engine.dispose()


_ledgers = {}
_ledgers_lock = threading.Lock()


def ledger_for(url):
    """The one Ledger (engine and pool) of a database URL or SQLite path in this process."""
    key = str(url)
    with _ledgers_lock:
        if key not in _ledgers:
            _ledgers[key] = Ledger(key)
        return _ledgers[key]


def close_ledgers():
    """Close the pooled connections of every ledger this process opened, and forget them: for a process done
    with its kiosks (the tests, between one kiosk and the next). A ledger asked for again starts a new pool."""
    with _ledgers_lock:
        for ledger in _ledgers.values():
            ledger.dispose()
        _ledgers.clear()


def connect(url):
    """A ledger connection for a database URL or SQLite path (tests and tools; requests use get_db)."""
    return ledger_for(url).connect()


def get_db():
    """The request's ledger connection, taken from the pool on first use."""
    if "db" not in g:
        g.db = current_app.extensions["kiosk"].ledger.connect()  # the app's one handle to its ledger
    return g.db


def close_db(e=None):
    """Give the request's connection back, if one was taken."""
    db = g.pop("db", None)
    if db is not None:
        db.close()


def get_meta(db, key, default=None):
    """A value kept in the meta table, or `default`."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row["value"] if row else default


def set_meta(db, key, value):
    """Keep a value in the meta table."""
    db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
               (key, str(value)))


@contextmanager
def transaction(db):
    """`with transaction(db):` runs the block in one transaction, rolling back on error.

    Works on a ledger connection (BEGIN IMMEDIATE on SQLite, BEGIN on PostgreSQL) and on the plain sqlite3
    connections of the session store."""
    db.execute(getattr(db, "begin", "BEGIN IMMEDIATE"))
    try:
        yield db
    except BaseException:
        with suppress(LedgerUnavailable):  # the connection is gone, and the transaction with it
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def init_app(app):
    """Give the request's connection back at teardown."""
    app.teardown_appcontext(close_db)

"""The SQLite ledger: one connection per request, WAL mode, forward-only migrations."""
import sqlite3
from contextlib import contextmanager
from pathlib import Path

from flask import current_app, g

SCHEMA_VERSION = 4
# Forward migrations, applied in order to a database older than SCHEMA_VERSION; schema.sql is version 1.
# Each is a list of statements that only add: never DROP or rewrite the order log.
MIGRATIONS = {
    2: [
        # A refund form submitted twice (double tap, reload) records one refund.
        "ALTER TABLE refunds ADD COLUMN request_key TEXT",
        "CREATE UNIQUE INDEX IF NOT EXISTS refunds_request_key ON refunds (request_key)",
        # Books put back on the shelf by a refund point at it, so a return is counted once.
        "ALTER TABLE stock_movements ADD COLUMN refund_id INTEGER REFERENCES refunds (id)",
        "CREATE INDEX IF NOT EXISTS stock_movements_order ON stock_movements (order_id)",
        "CREATE INDEX IF NOT EXISTS orders_created_at ON orders (created_at)",
        # What staff should know about an order beyond its status (e.g. how an adopted order was rebuilt).
        "ALTER TABLE orders ADD COLUMN note TEXT",
        # Webhook events already handled, so a replayed event changes nothing.
        """CREATE TABLE IF NOT EXISTS webhook_events (
            id TEXT PRIMARY KEY,
            type TEXT NOT NULL,
            payment_intent TEXT,
            received_at TEXT NOT NULL
        )""",
    ],
    3: [
        # Never more refunded than paid, counting refunds Stripe has not confirmed yet: the database itself
        # refuses it, so two refund forms submitted at the same moment cannot both pass.
        "ALTER TABLE orders ADD COLUMN refund_pending INTEGER NOT NULL DEFAULT 0 CHECK (refund_pending >= 0 "
        "AND amount_refunded >= 0 AND amount_refunded + refund_pending <= amount)",
        # A 5xx from Stripe is replayed for the same Idempotency-Key: count tries, each with its own key.
        "ALTER TABLE orders ADD COLUMN intent_tries INTEGER NOT NULL DEFAULT 0 CHECK (intent_tries >= 0)",
        # Copies back on the shelf (or held for a refund Stripe has not confirmed) never pass copies sold.
        "ALTER TABLE order_lines ADD COLUMN returned INTEGER NOT NULL DEFAULT 0 "
        "CHECK (returned >= 0 AND returned <= quantity)",
        "UPDATE order_lines SET returned = (SELECT COALESCE(SUM(m.delta), 0) FROM stock_movements m "
        "WHERE m.order_id = order_lines.order_id AND m.isbn = order_lines.isbn AND m.reason = 'return')",
        # A refund is written before Stripe is asked (pending), then succeeded, or deleted if Stripe did not make it.
        "ALTER TABLE refunds ADD COLUMN status TEXT NOT NULL DEFAULT 'succeeded' "
        "CHECK (status IN ('pending', 'succeeded'))",
        "ALTER TABLE refunds ADD COLUMN returns TEXT NOT NULL DEFAULT '{}'",
        "CREATE INDEX IF NOT EXISTS refunds_status ON refunds (status)",
        # Customer sessions moved to their own file (sessions.py); the old table held raw session ids.
        "DROP TABLE IF EXISTS sessions",
    ],
    4: [
        # The confirmation promises the kiosk forgets a receipt address: Stripe keeps it (to send the
        # receipt), the ledger only how many were sent, so one order cannot be used to send mail without end.
        "ALTER TABLE orders ADD COLUMN receipt_emails INTEGER NOT NULL DEFAULT 0 CHECK (receipt_emails >= 0)",
        "UPDATE orders SET email = NULL",
    ],
}


def connect(path):
    """A connection with the pragmas every user of the ledger needs."""
    db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA busy_timeout = 10000")
    return db


def get_db():
    """The request's connection, opened on first use."""
    if "db" not in g:
        g.db = connect(current_app.config["DATABASE"])
    return g.db


def close_db(e=None):
    """Close the request's connection, if one was opened."""
    db = g.pop("db", None)
    if db is not None:
        db.close()


def init_db(path):
    """Create missing tables and apply pending migrations; existing data is kept."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = connect(path)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.executescript((Path(__file__).parent / "schema.sql").read_text())
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            # A new database starts as schema.sql (version 1) and takes the same migrations as an old one.
            db.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")
        version = int(row["value"]) if row else 1
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with transaction(db):
                for statement in MIGRATIONS[target]:
                    db.execute(statement)
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(target),))
    finally:
        db.close()


def get_meta(db, key, default=None):
    """A value kept in the meta table, or `default`."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row["value"] if row else default


def set_meta(db, key, value):
    """Keep a value in the meta table."""
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, str(value)))


@contextmanager
def transaction(db):
    """`with transaction(db):` runs the block in BEGIN IMMEDIATE … COMMIT, rolling back on error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def init_app(app):
    """Close the request's connection at teardown."""
    app.teardown_appcontext(close_db)

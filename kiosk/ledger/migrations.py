"""Making the ledger (init_db), and its forward migrations from every earlier schema version to SCHEMA_VERSION, on
SQLite and PostgreSQL.

Version 1 is the first release's schema (SQLite only); PostgreSQL ledgers start at 5. Each migration only adds:
never DROP or rewrite the order log. A new ledger is made at the latest version from schema.py instead.
tests/test_migrations.py makes a ledger as each earlier release did, migrates it and compares it with a new one."""
from pathlib import Path

from kiosk.ledger.db import get_meta, ledger_for, set_meta, transaction

SCHEMA_VERSION = 11
# A statement is the same on both databases, or a dict of one per dialect where they spell a thing differently
# ({"sqlite": ..., "postgresql": ...}; a dialect left out runs nothing), so that a migrated ledger means what a new
# one means.
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
    5: [
        # Several counters on one ledger: which counter took each order, and copies held on the shelf by
        # payments under way, so two counters cannot both sell the last copy.
        "ALTER TABLE orders ADD COLUMN kiosk_id TEXT",
        "ALTER TABLE orders ADD COLUMN counter TEXT",
        "CREATE INDEX IF NOT EXISTS orders_kiosk ON orders (kiosk_id, status)",
        "ALTER TABLE order_lines ADD COLUMN held INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0 AND held <= quantity)",
        "ALTER TABLE stock ADD COLUMN held INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0)",
    ],
    6: [
        # Tax as sold: each line's class and rate, each order's tax per class, and the tax inside refunds.
        "ALTER TABLE orders ADD COLUMN subtotal INTEGER CHECK (subtotal >= 0)",
        "UPDATE orders SET subtotal = amount",
        "ALTER TABLE orders ADD COLUMN tax INTEGER NOT NULL DEFAULT 0 CHECK (tax >= 0)",
        "ALTER TABLE orders ADD COLUMN tax_inclusive INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE order_lines ADD COLUMN tax_class TEXT",
        "ALTER TABLE order_lines ADD COLUMN tax_rate TEXT",
        """CREATE TABLE IF NOT EXISTS order_taxes (
            order_id INTEGER NOT NULL REFERENCES orders (id),
            tax_class TEXT NOT NULL,
            rate TEXT NOT NULL,
            taxable INTEGER NOT NULL CHECK (taxable >= 0),
            tax INTEGER NOT NULL CHECK (tax >= 0),
            PRIMARY KEY (order_id, tax_class)
        )""",
        "ALTER TABLE refunds ADD COLUMN tax INTEGER NOT NULL DEFAULT 0 CHECK (tax >= 0)",
        "ALTER TABLE refunds ADD COLUMN taxes TEXT NOT NULL DEFAULT '{}'",
    ],
    7: [
        # Which way each order was paid: a card typed in the Payment Element, or the card reader (card_present).
        "ALTER TABLE orders ADD COLUMN method TEXT NOT NULL DEFAULT 'card' CHECK (method IN ('card', 'card_present'))",
    ],
    8: [
        # Books added, edited or hidden from the staff screen, applied on top of the catalog file at every
        # counter sharing the ledger; and the audit list of what staff changed, when, at which counter.
        """CREATE TABLE IF NOT EXISTS catalog_entries (
            isbn TEXT PRIMARY KEY,
            title TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
            author TEXT NOT NULL CHECK (length(author) BETWEEN 1 AND 200),
            price INTEGER NOT NULL CHECK (price >= 0),
            stock INTEGER NOT NULL CHECK (stock >= 0),
            cover TEXT NOT NULL DEFAULT '',
            description TEXT NOT NULL DEFAULT '',
            category TEXT NOT NULL DEFAULT '',
            tax_class TEXT NOT NULL DEFAULT 'standard',
            currency TEXT NOT NULL,
            hidden INTEGER NOT NULL DEFAULT 0 CHECK (hidden IN (0, 1)),
            updated_at TEXT NOT NULL
        )""",
        # An id the database numbers itself: INTEGER PRIMARY KEY on SQLite; on PostgreSQL that has no default,
        # and SERIAL is what schema.py makes there.
        {dialect: f"""CREATE TABLE IF NOT EXISTS audit_log (
            id {id_type} PRIMARY KEY,
            at TEXT NOT NULL,
            kiosk_id TEXT NOT NULL,
            counter TEXT NOT NULL,
            area TEXT NOT NULL CHECK (area IN ('setup', 'settings', 'catalog', 'stock')),
            what TEXT NOT NULL CHECK (length(what) BETWEEN 1 AND 2000),
            isbn TEXT
        )""" for dialect, id_type in (("sqlite", "INTEGER"), ("postgresql", "SERIAL"))},
        "CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at)",
    ],
    9: [
        # A PostgreSQL ledger that took migration 8 before it said SERIAL has an audit_log.id nothing numbers, so
        # every audit line failed: give it the sequence SERIAL would have made, starting after the last id.
        {"postgresql": "CREATE SEQUENCE IF NOT EXISTS audit_log_id_seq OWNED BY audit_log.id"},
        {"postgresql": "ALTER TABLE audit_log ALTER COLUMN id SET DEFAULT nextval('audit_log_id_seq')"},
        {"postgresql": "SELECT setval('audit_log_id_seq', COALESCE((SELECT MAX(id) FROM audit_log), 0) + 1, false)"},
    ],
    10: [
        # Promotions (pricing.py): each order's savings, and per line its share and what was paid for it.
        "ALTER TABLE orders ADD COLUMN discount INTEGER NOT NULL DEFAULT 0 CHECK (discount >= 0)",
        "ALTER TABLE order_lines ADD COLUMN discount INTEGER NOT NULL DEFAULT 0 "
        "CHECK (discount >= 0 AND discount <= unit_price * quantity)",
        "ALTER TABLE order_lines ADD COLUMN paid INTEGER CHECK (paid = unit_price * quantity - discount)",
        "UPDATE order_lines SET paid = unit_price * quantity",
        {dialect: f"""CREATE TABLE IF NOT EXISTS promotions (
            id {id_type} PRIMARY KEY,
            name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
            kind TEXT NOT NULL CHECK (kind IN ('percent', 'amount', 'bundle')),
            scope TEXT NOT NULL CHECK (scope IN ('cart', 'category', 'books')),
            percent TEXT NOT NULL DEFAULT '0',
            amount INTEGER NOT NULL DEFAULT 0,
            buy INTEGER NOT NULL DEFAULT 0,
            free INTEGER NOT NULL DEFAULT 0,
            category TEXT NOT NULL DEFAULT '',
            isbns TEXT NOT NULL DEFAULT '',
            min_spend INTEGER NOT NULL DEFAULT 0,
            starts_at TEXT,
            ends_at TEXT,
            code TEXT UNIQUE,
            max_uses INTEGER CHECK (max_uses IS NULL OR max_uses >= 1),
            uses INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0),
            currency TEXT NOT NULL,
            enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            CHECK (amount >= 0 AND min_spend >= 0),
            CHECK (kind <> 'bundle' OR (free >= 1 AND buy > free))
        )""" for dialect, id_type in (("sqlite", "INTEGER"), ("postgresql", "SERIAL"))},
        """CREATE TABLE IF NOT EXISTS order_discounts (
            order_id INTEGER NOT NULL REFERENCES orders (id),
            position INTEGER NOT NULL,
            promotion_id INTEGER REFERENCES promotions (id),
            name TEXT NOT NULL,
            code TEXT,
            amount INTEGER NOT NULL CHECK (amount > 0),
            reason TEXT,
            use_counted INTEGER NOT NULL DEFAULT 0 CHECK (use_counted IN (0, 1)),
            PRIMARY KEY (order_id, position)
        )""",
        "CREATE INDEX IF NOT EXISTS order_discounts_promotion ON order_discounts (promotion_id)",
    ],
    11: [
        # A year of sales: the sales figures read one index range per sold status, equality first, so SQLite (which
        # has no statistics to weigh a status against a paid_at range) reads the day and no more; the amounts come
        # from the index. It takes the place of orders_paid_at, which nothing reads without the status.
        "DROP INDEX IF EXISTS orders_paid_at",
        "CREATE INDEX IF NOT EXISTS orders_sold ON orders (status, paid_at, amount)",
        # The status filter, newest first, without a sort on PostgreSQL.
        "DROP INDEX IF EXISTS orders_status",
        "CREATE INDEX IF NOT EXISTS orders_by_status ON orders (status, id)",
        # Over-sold orders without reading every order: only they are in it.
        "CREATE INDEX IF NOT EXISTS orders_oversold ON orders (id) WHERE oversold = 1",
        # The refunds made on a day (they were read by status alone, every succeeded refund).
        "DROP INDEX IF EXISTS refunds_status",
        "CREATE INDEX IF NOT EXISTS refunds_by_status ON refunds (status, created_at)",
        # The export's tax columns: each rate sold in a date range, found by a few seeks before the first byte.
        "CREATE INDEX IF NOT EXISTS order_taxes_rate ON order_taxes (tax_class, rate, order_id)",
        # The orders of a book, newest first, from the index alone: a page of a best seller's orders without sorting
        # all of them. It takes the place of order_lines_isbn.
        "DROP INDEX IF EXISTS order_lines_isbn",
        "CREATE INDEX IF NOT EXISTS order_lines_by_isbn ON order_lines (isbn, order_id)",
    ],
}


def statements(version, dialect):
    """Migration `version` as `dialect` runs it."""
    for statement in MIGRATIONS[version]:
        statement = statement.get(dialect) if isinstance(statement, dict) else statement
        if statement:
            yield statement


def migrate(db, dialect, version):
    """Bring a ledger at `version` to SCHEMA_VERSION, one transaction per version."""
    for target in range(version + 1, SCHEMA_VERSION + 1):
        with transaction(db):
            for statement in statements(target, dialect):
                db.execute(statement)
            set_meta(db, "schema_version", target)


def init_db(url):
    """Make the ledger's tables if there are none, or bring an older ledger forward; data is kept."""
    from kiosk.ledger import schema  # SQLAlchemy's table machinery: only when a ledger is made or checked

    ledger = ledger_for(url)
    if ledger.dialect == "sqlite":
        Path(url).parent.mkdir(parents=True, exist_ok=True)
    with ledger.connect() as db:
        if ledger.dialect == "sqlite":
            db.execute("PRAGMA journal_mode = WAL")
        else:
            # Two counters starting at once on a new database: one makes the tables, the other waits.
            db.execute("SELECT pg_advisory_lock(4711)")
        try:
            from sqlalchemy import inspect
            if not inspect(db.connection).has_table("meta"):
                schema.metadata.create_all(db.connection)
                set_meta(db, "schema_version", SCHEMA_VERSION)
                return
            migrate(db, ledger.dialect, int(get_meta(db, "schema_version", 1)))
        finally:
            if ledger.dialect != "sqlite":
                db.execute("SELECT pg_advisory_unlock(4711)")

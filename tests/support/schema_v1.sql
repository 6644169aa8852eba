-- The kiosk's ledger. Only CREATE ... IF NOT EXISTS here: an upgrade never drops the order log.
-- Changes after version 1 are forward migrations in db.py.
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    reference TEXT NOT NULL UNIQUE,
    attempt TEXT UNIQUE,
    payment_intent TEXT UNIQUE,
    status TEXT NOT NULL CHECK (status IN
        ('pending', 'paid', 'failed', 'canceled', 'refunded', 'partially_refunded')),
    amount INTEGER NOT NULL CHECK (amount >= 0),
    currency TEXT NOT NULL,
    amount_refunded INTEGER NOT NULL DEFAULT 0,
    email TEXT,
    last_error TEXT,
    oversold INTEGER NOT NULL DEFAULT 0,
    adopted INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    paid_at TEXT
);
CREATE INDEX IF NOT EXISTS orders_status ON orders (status);
CREATE INDEX IF NOT EXISTS orders_paid_at ON orders (paid_at);

CREATE TABLE IF NOT EXISTS order_lines (
    order_id INTEGER NOT NULL REFERENCES orders (id),
    isbn TEXT NOT NULL,
    title TEXT NOT NULL,
    unit_price INTEGER NOT NULL CHECK (unit_price >= 0),
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, isbn)
);
CREATE INDEX IF NOT EXISTS order_lines_isbn ON order_lines (isbn);

CREATE TABLE IF NOT EXISTS stock (
    isbn TEXT PRIMARY KEY,
    on_hand INTEGER NOT NULL,
    catalog_qty INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS stock_movements (
    id INTEGER PRIMARY KEY,
    isbn TEXT NOT NULL,
    delta INTEGER NOT NULL,
    reason TEXT NOT NULL CHECK (reason IN ('catalog', 'sale', 'return', 'adjust')),
    order_id INTEGER REFERENCES orders (id),
    note TEXT,
    created_at TEXT NOT NULL
);
-- A sale takes stock exactly once per order line, whichever path settles the order first.
CREATE UNIQUE INDEX IF NOT EXISTS one_sale_per_line ON stock_movements (order_id, isbn) WHERE reason = 'sale';

CREATE TABLE IF NOT EXISTS refunds (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders (id),
    stripe_refund TEXT UNIQUE,
    amount INTEGER NOT NULL CHECK (amount > 0),
    restocked INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    created_at TEXT NOT NULL
);

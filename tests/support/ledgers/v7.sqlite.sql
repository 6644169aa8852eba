-- A new ledger as schema version 7 made it (755cf77: kiosk/schema.py, create_all), on sqlite.

CREATE TABLE meta (
	"key" TEXT NOT NULL, 
	value TEXT NOT NULL, 
	PRIMARY KEY ("key")
);

CREATE TABLE orders (
	id INTEGER NOT NULL, 
	reference TEXT NOT NULL, 
	attempt TEXT, 
	payment_intent TEXT, 
	status TEXT NOT NULL, 
	amount INTEGER NOT NULL, 
	currency TEXT NOT NULL, 
	amount_refunded INTEGER DEFAULT 0 NOT NULL, 
	email TEXT, 
	last_error TEXT, 
	oversold INTEGER DEFAULT 0 NOT NULL, 
	adopted INTEGER DEFAULT 0 NOT NULL, 
	created_at TEXT NOT NULL, 
	updated_at TEXT NOT NULL, 
	paid_at TEXT, 
	note TEXT, 
	refund_pending INTEGER DEFAULT 0 NOT NULL, 
	intent_tries INTEGER DEFAULT 0 NOT NULL, 
	receipt_emails INTEGER DEFAULT 0 NOT NULL, 
	kiosk_id TEXT, 
	counter TEXT, 
	subtotal INTEGER, 
	tax INTEGER DEFAULT 0 NOT NULL, 
	tax_inclusive INTEGER DEFAULT 0 NOT NULL, 
	method TEXT DEFAULT 'card' NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT orders_status_known CHECK (status IN ('pending', 'paid', 'failed', 'canceled', 'refunded', 'partially_refunded')), 
	CONSTRAINT orders_amount CHECK (amount >= 0), 
	CONSTRAINT orders_refunds_fit CHECK (refund_pending >= 0 AND amount_refunded >= 0 AND amount_refunded + refund_pending <= amount), 
	CONSTRAINT orders_intent_tries CHECK (intent_tries >= 0), 
	CONSTRAINT orders_receipt_emails CHECK (receipt_emails >= 0), 
	CONSTRAINT orders_subtotal CHECK (subtotal >= 0), 
	CONSTRAINT orders_tax CHECK (tax >= 0), 
	CONSTRAINT orders_method_known CHECK (method IN ('card', 'card_present')), 
	UNIQUE (reference), 
	UNIQUE (attempt), 
	UNIQUE (payment_intent)
);

CREATE INDEX orders_created_at ON orders (created_at);

CREATE INDEX orders_kiosk ON orders (kiosk_id, status);

CREATE INDEX orders_paid_at ON orders (paid_at);

CREATE INDEX orders_status ON orders (status);

CREATE TABLE stock (
	isbn TEXT NOT NULL, 
	on_hand INTEGER NOT NULL, 
	catalog_qty INTEGER NOT NULL, 
	held INTEGER DEFAULT 0 NOT NULL, 
	PRIMARY KEY (isbn), 
	CONSTRAINT stock_held CHECK (held >= 0)
);

CREATE TABLE webhook_events (
	id TEXT NOT NULL, 
	type TEXT NOT NULL, 
	payment_intent TEXT, 
	received_at TEXT NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE order_lines (
	order_id INTEGER NOT NULL, 
	isbn TEXT NOT NULL, 
	title TEXT NOT NULL, 
	unit_price INTEGER NOT NULL, 
	quantity INTEGER NOT NULL, 
	returned INTEGER DEFAULT 0 NOT NULL, 
	held INTEGER DEFAULT 0 NOT NULL, 
	tax_class TEXT, 
	tax_rate TEXT, 
	PRIMARY KEY (order_id, isbn), 
	CONSTRAINT order_lines_price CHECK (unit_price >= 0), 
	CONSTRAINT order_lines_quantity CHECK (quantity > 0), 
	CONSTRAINT order_lines_returned CHECK (returned >= 0 AND returned <= quantity), 
	CONSTRAINT order_lines_held CHECK (held >= 0 AND held <= quantity), 
	FOREIGN KEY(order_id) REFERENCES orders (id)
);

CREATE INDEX order_lines_isbn ON order_lines (isbn);

CREATE TABLE order_taxes (
	order_id INTEGER NOT NULL, 
	tax_class TEXT NOT NULL, 
	rate TEXT NOT NULL, 
	taxable INTEGER NOT NULL, 
	tax INTEGER NOT NULL, 
	PRIMARY KEY (order_id, tax_class), 
	CONSTRAINT order_taxes_taxable CHECK (taxable >= 0), 
	CONSTRAINT order_taxes_tax CHECK (tax >= 0), 
	FOREIGN KEY(order_id) REFERENCES orders (id)
);

CREATE TABLE refunds (
	id INTEGER NOT NULL, 
	order_id INTEGER NOT NULL, 
	stripe_refund TEXT, 
	amount INTEGER NOT NULL, 
	restocked INTEGER DEFAULT 0 NOT NULL, 
	reason TEXT, 
	created_at TEXT NOT NULL, 
	request_key TEXT, 
	status TEXT DEFAULT 'succeeded' NOT NULL, 
	returns TEXT DEFAULT '{}' NOT NULL, 
	tax INTEGER DEFAULT 0 NOT NULL, 
	taxes TEXT DEFAULT '{}' NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT refunds_amount CHECK (amount > 0), 
	CONSTRAINT refunds_tax CHECK (tax >= 0), 
	CONSTRAINT refunds_status_known CHECK (status IN ('pending', 'succeeded')), 
	FOREIGN KEY(order_id) REFERENCES orders (id), 
	UNIQUE (stripe_refund)
);

CREATE UNIQUE INDEX refunds_request_key ON refunds (request_key);

CREATE INDEX refunds_status ON refunds (status);

CREATE TABLE stock_movements (
	id INTEGER NOT NULL, 
	isbn TEXT NOT NULL, 
	delta INTEGER NOT NULL, 
	reason TEXT NOT NULL, 
	order_id INTEGER, 
	note TEXT, 
	created_at TEXT NOT NULL, 
	refund_id INTEGER, 
	PRIMARY KEY (id), 
	CONSTRAINT stock_movements_reason CHECK (reason IN ('catalog', 'sale', 'return', 'adjust')), 
	FOREIGN KEY(order_id) REFERENCES orders (id), 
	FOREIGN KEY(refund_id) REFERENCES refunds (id)
);

CREATE UNIQUE INDEX one_sale_per_line ON stock_movements (order_id, isbn) WHERE reason = 'sale';

CREATE INDEX stock_movements_order ON stock_movements (order_id);

INSERT INTO meta (key, value) VALUES ('schema_version', '7');

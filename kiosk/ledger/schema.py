"""The ledger's tables as they are now (migrations.SCHEMA_VERSION), for SQLite and PostgreSQL alike.

A new ledger is made from these; an older ledger is brought here by migrations.py. Rules the
money depends on are CHECKs the database enforces, whichever counter writes.
"""
from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    text,
)

metadata = MetaData()
STATUSES = ("pending", "paid", "failed", "canceled", "refunded", "partially_refunded")
METHODS = ("card", "card_present")


def _one_of(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


meta = Table(
    "meta", metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

orders = Table(
    "orders", metadata,
    Column("id", Integer, primary_key=True),
    Column("reference", Text, nullable=False, unique=True),
    Column("attempt", Text, unique=True),
    Column("payment_intent", Text, unique=True),
    Column("status", Text, nullable=False),
    Column("amount", Integer, nullable=False),
    Column("currency", Text, nullable=False),
    Column("amount_refunded", Integer, nullable=False, server_default=text("0")),
    Column("email", Text),  # no longer written: Stripe keeps the receipt address
    Column("last_error", Text),
    Column("oversold", Integer, nullable=False, server_default=text("0")),
    Column("adopted", Integer, nullable=False, server_default=text("0")),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    Column("paid_at", Text),
    Column("note", Text),
    Column("refund_pending", Integer, nullable=False, server_default=text("0")),
    Column("intent_tries", Integer, nullable=False, server_default=text("0")),
    Column("receipt_emails", Integer, nullable=False, server_default=text("0")),
    Column("kiosk_id", Text),  # the counter that took the order
    Column("counter", Text),   # its KIOSK_COUNTER_NAME then
    Column("subtotal", Integer),  # the prices added up (amount is what was charged)
    Column("tax", Integer, nullable=False, server_default=text("0")),  # all its tax, as sold
    Column("tax_inclusive", Integer, nullable=False, server_default=text("0")),  # 1: in the prices; 0: added
    # How it is paid: "card" typed in the Payment Element, or "card_present" on the card reader.
    Column("method", Text, nullable=False, server_default=text("'card'")),
    # All the savings of its promotions and staff discount (subtotal is after them: the list prices less this).
    Column("discount", Integer, nullable=False, server_default=text("0")),
    CheckConstraint(_one_of("status", STATUSES), name="orders_status_known"),
    CheckConstraint("amount >= 0", name="orders_amount"),
    # Never more refunded than paid, counting refunds Stripe has not confirmed yet.
    CheckConstraint("refund_pending >= 0 AND amount_refunded >= 0 AND amount_refunded + refund_pending <= amount",
                    name="orders_refunds_fit"),
    CheckConstraint("intent_tries >= 0", name="orders_intent_tries"),
    CheckConstraint("receipt_emails >= 0", name="orders_receipt_emails"),
    CheckConstraint("subtotal >= 0", name="orders_subtotal"),
    CheckConstraint("tax >= 0", name="orders_tax"),
    CheckConstraint(_one_of("method", METHODS), name="orders_method_known"),
    CheckConstraint("discount >= 0", name="orders_discount"),
)
# The status filter, newest first (PostgreSQL's index holds no row id of its own to order by).
Index("orders_by_status", orders.c.status, orders.c.id)
# The sales figures (takings, charts, close the day): the sold statuses' one range of paid_at each, their amounts
# read from the index itself.
Index("orders_sold", orders.c.status, orders.c.paid_at, orders.c.amount)
# Only over-sold orders are in it: a sale that was not over-sold writes nothing here.
Index("orders_oversold", orders.c.id, sqlite_where=text("oversold = 1"), postgresql_where=text("oversold = 1"))
Index("orders_created_at", orders.c.created_at)
Index("orders_kiosk", orders.c.kiosk_id, orders.c.status)

order_lines = Table(
    "order_lines", metadata,
    Column("order_id", Integer, ForeignKey("orders.id"), nullable=False),
    Column("isbn", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("unit_price", Integer, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("returned", Integer, nullable=False, server_default=text("0")),
    Column("held", Integer, nullable=False, server_default=text("0")),  # copies this order holds on the shelf
    Column("tax_class", Text),  # as sold: rates change, the ledger keeps what the customer paid
    Column("tax_rate", Text),
    # As sold: the line's share of the savings (pricing.py's split) and what was paid for it, list price less that.
    Column("discount", Integer, nullable=False, server_default=text("0")),
    Column("paid", Integer),
    PrimaryKeyConstraint("order_id", "isbn"),
    CheckConstraint("unit_price >= 0", name="order_lines_price"),
    CheckConstraint("quantity > 0", name="order_lines_quantity"),
    CheckConstraint("returned >= 0 AND returned <= quantity", name="order_lines_returned"),
    CheckConstraint("held >= 0 AND held <= quantity", name="order_lines_held"),
    CheckConstraint("discount >= 0 AND discount <= unit_price * quantity", name="order_lines_discount"),
    CheckConstraint("paid = unit_price * quantity - discount", name="order_lines_paid"),
)
# The orders of a book, newest first, from the index alone (the order search by ISBN, a best seller's included).
Index("order_lines_by_isbn", order_lines.c.isbn, order_lines.c.order_id)

# Promotions the shop runs (pricing.py applies them): what they take off, on which books, when, and for a code how
# many uses it has and has had. A code's use is counted by a conditional update as an order is written, so two
# counters cannot both take its last use; a canceled payment gives it back.
PROMOTION_KINDS = ("percent", "amount", "bundle")
PROMOTION_SCOPES = ("cart", "category", "books")
promotions = Table(
    "promotions", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("percent", Text, nullable=False, server_default=text("'0'")),  # a decimal, e.g. "12.5"
    Column("amount", Integer, nullable=False, server_default=text("0")),
    Column("buy", Integer, nullable=False, server_default=text("0")),
    Column("free", Integer, nullable=False, server_default=text("0")),
    Column("category", Text, nullable=False, server_default=text("''")),
    Column("isbns", Text, nullable=False, server_default=text("''")),  # ISBN-13s, comma-separated
    Column("min_spend", Integer, nullable=False, server_default=text("0")),
    Column("starts_at", Text),  # ledger stamps (UTC); none: from now on, or for good
    Column("ends_at", Text),
    Column("code", Text, unique=True),
    Column("max_uses", Integer),
    Column("uses", Integer, nullable=False, server_default=text("0")),
    Column("currency", Text, nullable=False),  # of amount and min_spend: a later KIOSK_CURRENCY sets it aside
    Column("enabled", Integer, nullable=False, server_default=text("1")),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    CheckConstraint("length(name) BETWEEN 1 AND 80", name="promotions_name"),
    CheckConstraint(_one_of("kind", PROMOTION_KINDS), name="promotions_kind"),
    CheckConstraint(_one_of("scope", PROMOTION_SCOPES), name="promotions_scope"),
    CheckConstraint("amount >= 0 AND min_spend >= 0", name="promotions_money"),
    CheckConstraint("kind <> 'bundle' OR (free >= 1 AND buy > free)", name="promotions_bundle"),
    CheckConstraint("max_uses IS NULL OR max_uses >= 1", name="promotions_max_uses"),
    CheckConstraint("uses >= 0", name="promotions_uses"),
    CheckConstraint("enabled IN (0, 1)", name="promotions_enabled"),
)

# Each saving an order got, as sold: the promotion's name and code then, or the staff discount and its reason.
# use_counted: 1 while the order holds one use of the code.
order_discounts = Table(
    "order_discounts", metadata,
    Column("order_id", Integer, ForeignKey("orders.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("promotion_id", Integer, ForeignKey("promotions.id")),  # none: the staff discount
    Column("name", Text, nullable=False),
    Column("code", Text),
    Column("amount", Integer, nullable=False),
    Column("reason", Text),
    Column("use_counted", Integer, nullable=False, server_default=text("0")),
    PrimaryKeyConstraint("order_id", "position"),
    CheckConstraint("amount > 0", name="order_discounts_amount"),
    CheckConstraint("use_counted IN (0, 1)", name="order_discounts_use_counted"),
)
Index("order_discounts_promotion", order_discounts.c.promotion_id)

stock = Table(
    "stock", metadata,
    Column("isbn", Text, primary_key=True),
    Column("on_hand", Integer, nullable=False),     # may go below zero: paid is paid, even past the shelf
    Column("catalog_qty", Integer, nullable=False),  # the count the catalog file had when last read
    Column("held", Integer, nullable=False, server_default=text("0")),  # copies held by payments under way
    CheckConstraint("held >= 0", name="stock_held"),
)

order_taxes = Table(
    "order_taxes", metadata,
    Column("order_id", Integer, ForeignKey("orders.id"), nullable=False),
    Column("tax_class", Text, nullable=False),
    Column("rate", Text, nullable=False),      # the percent as sold, e.g. "8.875"
    Column("taxable", Integer, nullable=False),  # the class's line totals
    Column("tax", Integer, nullable=False),
    PrimaryKeyConstraint("order_id", "tax_class"),
    CheckConstraint("taxable >= 0", name="order_taxes_taxable"),
    CheckConstraint("tax >= 0", name="order_taxes_tax"),
)
# The export's tax columns (each rate sold in a date range) found by a few seeks, before its first byte.
Index("order_taxes_rate", order_taxes.c.tax_class, order_taxes.c.rate, order_taxes.c.order_id)

refunds = Table(
    "refunds", metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", Integer, ForeignKey("orders.id"), nullable=False),
    Column("stripe_refund", Text, unique=True),
    Column("amount", Integer, nullable=False),
    Column("restocked", Integer, nullable=False, server_default=text("0")),
    Column("reason", Text),
    Column("created_at", Text, nullable=False),
    Column("request_key", Text),
    Column("status", Text, nullable=False, server_default=text("'succeeded'")),
    Column("returns", Text, nullable=False, server_default=text("'{}'")),
    Column("tax", Integer, nullable=False, server_default=text("0")),  # the tax inside the refund
    Column("taxes", Text, nullable=False, server_default=text("'{}'")),  # ... by class, as JSON
    CheckConstraint("amount > 0", name="refunds_amount"),
    CheckConstraint("tax >= 0", name="refunds_tax"),
    CheckConstraint(_one_of("status", ("pending", "succeeded")), name="refunds_status_known"),
)
Index("refunds_request_key", refunds.c.request_key, unique=True)
# Refunds waiting for Stripe, and those made (succeeded) on a day.
Index("refunds_by_status", refunds.c.status, refunds.c.created_at)

stock_movements = Table(
    "stock_movements", metadata,
    Column("id", Integer, primary_key=True),
    Column("isbn", Text, nullable=False),
    Column("delta", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("order_id", Integer, ForeignKey("orders.id")),
    Column("note", Text),
    Column("created_at", Text, nullable=False),
    Column("refund_id", Integer, ForeignKey("refunds.id")),
    CheckConstraint(_one_of("reason", ("catalog", "sale", "return", "adjust")), name="stock_movements_reason"),
)
# A sale takes stock exactly once per order line, whichever path (or counter) settles the order first.
Index("one_sale_per_line", stock_movements.c.order_id, stock_movements.c.isbn, unique=True,
      sqlite_where=text("reason = 'sale'"), postgresql_where=text("reason = 'sale'"))
Index("stock_movements_order", stock_movements.c.order_id)

webhook_events = Table(
    "webhook_events", metadata,
    Column("id", Text, primary_key=True),
    Column("type", Text, nullable=False),
    Column("payment_intent", Text),
    Column("received_at", Text, nullable=False),
)

# Books added, edited or hidden on the staff screen: each row replaces the catalog file's book with that ISBN
# (or adds one) at every counter; `stock` is the count the entry brought, as catalog_qty is for the file.
catalog_entries = Table(
    "catalog_entries", metadata,
    Column("isbn", Text, primary_key=True),  # ISBN-13
    Column("title", Text, nullable=False),
    Column("author", Text, nullable=False),
    Column("price", Integer, nullable=False),  # minor units of the shop currency
    Column("stock", Integer, nullable=False),
    Column("cover", Text, nullable=False, server_default=text("''")),
    Column("description", Text, nullable=False, server_default=text("''")),
    Column("category", Text, nullable=False, server_default=text("''")),
    Column("tax_class", Text, nullable=False, server_default=text("'standard'")),
    Column("currency", Text, nullable=False),  # the price's currency: a later KIOSK_CURRENCY change sets it aside
    Column("hidden", Integer, nullable=False, server_default=text("0")),  # 1: not on sale
    Column("updated_at", Text, nullable=False),
    CheckConstraint("length(title) BETWEEN 1 AND 300", name="catalog_entries_title"),
    CheckConstraint("length(author) BETWEEN 1 AND 200", name="catalog_entries_author"),
    CheckConstraint("price >= 0", name="catalog_entries_price"),
    CheckConstraint("stock >= 0", name="catalog_entries_stock"),
    CheckConstraint("hidden IN (0, 1)", name="catalog_entries_hidden"),
)

# What staff changed from the screen (settings, the catalog, counts), when, and at which counter. Never secrets.
AUDIT_AREAS = ("setup", "settings", "catalog", "stock")
audit_log = Table(
    "audit_log", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", Text, nullable=False),
    Column("kiosk_id", Text, nullable=False),
    Column("counter", Text, nullable=False),
    Column("area", Text, nullable=False),
    Column("what", Text, nullable=False),
    Column("isbn", Text),
    CheckConstraint(_one_of("area", AUDIT_AREAS), name="audit_log_area"),
    CheckConstraint("length(what) BETWEEN 1 AND 2000", name="audit_log_what"),
)
Index("audit_log_at", audit_log.c.at)

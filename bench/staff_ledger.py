"""A year of sales for `python -m bench staff` (issue #28): N orders over 365 days in a ledger, written in bulk, checked
against the ledger's own functions, and cached between runs.

`python -m bench.staff_ledger [N] [--db sqlite|postgresql] [--check]` makes (or finds) the ledger and says where.

The plan (Year) draws the year day by day from a fixed seed: orders per day (a week's rhythm; today an ordinary
day) at times in shop hours (America/New_York), each at one of three counters, typed card or card reader, 1-4 books
of the 10k-title catalog (bench/make_catalog.py) by popularity, each only while a copy is free (checkout holds one),
priced by the kiosk's own pricing and tax rules (a book fair's code, a children's fortnight, staff discounts; 8.875%
added), then paid, declined or canceled. A few paid orders are adopted from Stripe, holding nothing (some over-sold);
shelves are counted back up each morning; refunds (all books back, some, or an amount) come days later. Each event
is either written as rows (Bulk: executemany on SQLite, COPY on PostgreSQL, a transaction per ten days) or made by
the ledger's own functions (replay(): open_checkout, adopt_paid, mark_paid/failed/canceled, record_refund,
count_shelf...).

The rows go into a ledger at schema version 10 (BASE_VERSION: tests/support/ledgers/v7 as that release made it new,
then the kiosk's own migrations 8-10): the ledger the code before #28 opens. The code being measured brings a copy
to its own version with its own init_db, as a shop's ledger gets there, so whatever a later migration adds (indexes,
or totals it fills from the rows) is the kiosk's doing, not the generator's.

check(): a 300-order day made by the functions and by Bulk plus the migration must hold the same rows in every table
(timestamps compared as timestamps: the functions stamp the clock), and the reports (day_report, takings, sales by
hour, day and counter) must give the plan's own sums on both. A migrated copy is checked the same way against the
plan's sums for the whole year and a few days.

Cached in $KIOSK_BENCH_CACHE/staff (make_catalog.cache_dir): per database and size the v10 ledger and one migrated
copy per schema version and migration text. The year ends today (the dashboard shows today), so a new day makes a new
one. PostgreSQL runs in a cluster of its own kept there (Debian's initdb and postgres through
tests/support/pgcluster.py), started for the bench and stopped after.
"""
import atexit
import bisect
import contextlib
import hashlib
import heapq
import importlib.util
import json
import os
import random
import re
import shutil
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.common import ROOT, free_port
from bench.make_catalog import cache_dir, catalog_path

GENERATOR = 3  # bump when the rows change: cached ledgers are made again
BASE_VERSION = 10
TITLES = 10_000
ZONE = ZoneInfo("America/New_York")
RATES = "standard:8.875"
CURRENCY = "USD"
PIN = "482613"
# (kiosk id, counter name, share of the orders, share paid on the card reader); the bench's app is the first.
COUNTERS = (("kiosk_bench_front", "Front counter", 55, 0.7), ("kiosk_bench_back", "Back counter", 30, 0.6),
            ("kiosk_bench_cafe", "Café", 15, 0.9))
OPEN, CLOSE = 9 * 3600, 21 * 3600  # shop hours, seconds after local midnight
REFERENCE = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # orders.new_reference's alphabet
B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
SOLD = ("paid", "partially_refunded", "refunded")
SUMS = ("orders", "books", "gross", "discounts", "sales", "tax", "refunds", "tax_refunded")


@dataclass(frozen=True)
class Mix:
    """How a plan's orders turn out (shares of all orders) and how far apart things happen."""

    days: int = 365
    adopted: float = 0.004
    failed: float = 0.015
    canceled: float = 0.02
    refund_all: float = 0.024  # of paid orders: refunded in full (one refund, or two)
    refund_some: float = 0.010  # ... in part
    fair_code: float = 0.3  # of the orders during the book fair: the customer gives its code
    staff: float = 0.003  # a staff discount
    refund_days: int = 21  # a refund comes at most this many days after the sale
    pending: int = 3  # the last orders of the last day are still being paid


YEAR = Mix()
# The check's day: every path often enough to be seen in 300 orders.
CHECK = Mix(days=1, adopted=0.05, failed=0.05, canceled=0.05, refund_all=0.12, refund_some=0.08, staff=0.05,
            refund_days=0)


# ---------------------------------------------------------------------------------------------------------------------
# The plan


@dataclass(slots=True)
class Order:
    """An order as the plan makes it: as sold (status: paid, failed, canceled or pending), and refunded so far."""

    id: int
    sec: int
    created: str
    settled: str
    reference: str
    attempt: str | None
    intent: str | None
    status: str
    who: tuple
    method: str
    lines: list
    savings: list
    taxes: list
    amount: int = 0
    subtotal: int = 0
    tax: int = 0
    discount: int = 0
    error: str | None = None
    oversold: int = 0
    adopted: int = 0
    note: str | None = None
    emails: int = 0
    refunded: int = 0
    returned: dict = field(default_factory=dict)


@dataclass(slots=True)
class Refund:
    """A refund of a paid order: its amount, the copies back ({isbn: copies}) and its tax by class."""

    id: int
    stamp: str
    order: Order
    amount: int
    returns: dict
    reason: str | None
    stripe_refund: str
    request_key: str
    shares: dict


@dataclass(slots=True)
class Restock:
    """A shelf counted back up to `count` copies before opening (stock.count_shelf)."""

    stamp: str
    isbn: str
    count: int
    delta: int
    note: str = "Delivery, shelf counted"


@dataclass(slots=True)
class Promo:
    """A promotion set up on the staff screen (promotions.save), the first morning."""

    id: int
    stamp: str
    values: dict


def _stripe_id(rng, prefix):
    return prefix + "".join(rng.choices(B62, k=24))


class Year:
    """A plan of `total` orders over mix.days local days ending on `last_day`: days() yields each day's events in
    the order they happen, with the shelves, refunds to come and the sums reports should give kept on the way."""

    def __init__(self, total, mix, last_day, books, seed=GENERATOR):
        from kiosk.core import tax

        self.rng = random.Random(f"{seed}-{total}-{mix.days}-{last_day}")
        self.mix, self.last_day, self.total = mix, last_day, total
        self.first_day = last_day - timedelta(days=mix.days - 1)
        self.rates = tax.parse_rates(RATES)
        self.books = {b.isbn13: b for b in books}
        ranked = sorted(self.books)
        self.rng.shuffle(ranked)
        self.ranked = ranked
        weights = [1 / (rank + 40) for rank in range(len(ranked))]  # a long tail; the best seller ~0.5% of copies
        self.cumulative = [0.0]
        for w in weights:
            self.cumulative.append(self.cumulative[-1] + w)
        share = {isbn: w / self.cumulative[-1] for isbn, w in zip(ranked, weights, strict=True)}
        daily = total * 1.6 / mix.days
        self.target = {isbn: max(24, round(daily * share[isbn] * 28)) for isbn in ranked}  # four weeks on the shelf
        self.on_hand = {isbn: b.stock for isbn, b in self.books.items()}
        self.held = dict.fromkeys(self.books, 0)
        self.sold_out = {isbn for isbn, n in self.on_hand.items() if n <= 0}
        self.sold_copies = dict.fromkeys(self.books, 0)
        self.references = set()
        self.later = []  # (day index, second, n, order, step) of refunds to come
        self.planned = 0
        self.sums = {}
        self.ids = {"order": 0, "refund": 0}
        self.noon = {}
        self.facts = {}
        self.promotions = self._promotions()

    # -- time

    def stamp(self, day, sec):
        """A ledger stamp (UTC) for `sec` seconds after local midnight of `day` (shop hours: no clock change then)."""
        noon = self.noon.get(day)
        if noon is None:
            noon = self.noon[day] = datetime.combine(day, clock_time(12), ZONE).astimezone(UTC).replace(tzinfo=None)
        return str(noon + timedelta(seconds=sec - 12 * 3600))

    def _counts(self):
        """Orders per day, exactly `total` in all: a week's rhythm and a summer bump, laid out from the last day
        back (an ordinary weekday, whatever the date), so every run's today and last weeks are alike."""
        weights = []
        for n in range(self.mix.days):
            back = self.mix.days - 1 - n
            summer = 1 + 0.3 * 2.718 ** -(((back - 150) / 30) ** 2)
            weights.append((1.0, 0.9, 0.85, 0.8, 1.3, 1.5, 1.15)[back % 7] * summer)
        whole = sum(weights)
        exact = [self.total * w / whole for w in weights]
        counts = [int(x) for x in exact]
        for i in sorted(range(len(exact)), key=lambda i: counts[i] - exact[i])[:self.total - sum(counts)]:
            counts[i] += 1
        return counts

    def _times(self, count):
        """Seconds after local midnight of a day's orders, in shop hours, busier at lunch and after work."""
        rng, out = self.rng, []
        for _ in range(count):
            r = rng.random()
            sec = rng.uniform(OPEN, CLOSE) if r < 0.6 else rng.gauss(13 * 3600, 3600) if r < 0.8 else \
                rng.gauss(17.5 * 3600, 5400)
            out.append(int(min(max(sec, OPEN), CLOSE - 1)))
        return sorted(out)

    # -- promotions

    def _window(self, from_end, length):
        last = max(0, self.mix.days - from_end)
        return (max(0, last - length + 1), last)

    def _promotions(self):
        from kiosk.core.pricing import Promotion
        from kiosk.core.stamps import local_day_bounds

        fair, kids = self._window(72, 14), self._window(132, 14)
        found = []
        for pid, (first, last), name, extra in (
                (1, fair, "Book fair", {"scope": "cart", "percent": "10", "code": "FAIR10"}),
                (2, kids, "Children's fortnight", {"scope": "category", "percent": "20", "category": "Children"})):
            start, end = local_day_bounds(self.first_day + timedelta(days=first),
                                          self.first_day + timedelta(days=last), ZONE)
            values = {"name": name, "kind": "percent", "scope": "cart", "percent": "0", "amount": 0, "buy": 0,
                      "free": 0, "category": "", "isbns": "", "min_spend": 0, "starts_at": start, "ends_at": end,
                      "code": None, "max_uses": None, "currency": CURRENCY, "enabled": 1, **extra}
            rule = Promotion(id=pid, name=name, kind="percent", scope=values["scope"],
                             percent=Decimal(values["percent"]), category=values["category"],
                             code=values["code"] or "")
            found.append((first, last, rule, values))
        return found

    # -- the year

    def days(self):
        """(local day, its events in order) for every day of the plan."""
        counts = self._counts()
        for n, count in enumerate(counts):
            day = self.first_day + timedelta(days=n)
            events = []
            if n == 0:
                events += [Promo(pid, self.stamp(day, 7 * 3600 + pid), values)
                           for pid, (_, _, _, values) in enumerate(self.promotions, 1)]
            events += self._restocks(day)
            times, i = self._times(count), 0
            pending_from = count - self.mix.pending if n == len(counts) - 1 else count
            # The day's orders and its refunds (some planned by this day's own orders) as they come.
            while i < count or (self.later and self.later[0][0] == n):
                if self.later and self.later[0][0] == n and (i == count or self.later[0][1] < times[i]):
                    events.append(self._refund(n, day, heapq.heappop(self.later)))
                    continue
                order = self._order(n, day, times[i], pending=i >= pending_from)
                i += 1
                if order is not None:
                    events.append(order)
            yield day, events

    def _restocks(self, day):
        """Sold-out shelves counted back up before opening, as count_shelf sets them."""
        out = []
        for i, isbn in enumerate(sorted(self.sold_out)):
            sec = 8 * 3600 + i
            count = self.target[isbn]
            delta = count - self.on_hand[isbn]
            self.on_hand[isbn] = count
            out.append(Restock(self.stamp(day, sec), isbn, count, delta))
        self.sold_out.clear()
        return out

    def _pick(self):
        return self.ranked[bisect.bisect(self.cumulative, self.rng.random() * self.cumulative[-1]) - 1]

    def _books(self, adopted):
        """{isbn: copies} of a cart: 1-4 books by popularity, each only if the shelf has them free (adopted
        payments hold nothing: half of them are for a book sold out meanwhile, and over-sell it)."""
        rng = self.rng
        wanted = rng.choices((1, 2, 3, 4), (60, 30, 8, 2))[0]
        cart = {}
        for _ in range(wanted * 20):
            if len(cart) == wanted:
                break
            isbn = self._pick()
            if adopted and self.sold_out and rng.random() < 0.5:
                isbn = sorted(self.sold_out)[rng.randrange(len(self.sold_out))]
            copies = 2 if rng.random() < 0.05 else 1
            if isbn in cart or (not adopted and self.on_hand[isbn] - self.held[isbn] < copies):
                continue
            cart[isbn] = copies
        return cart

    def _price(self, n, cart, code):
        """Lines, savings and tax of a cart as the kiosk prices it (cart.price: sorted by title, then the rule)."""
        from kiosk.core import pricing, tax

        lines = sorted(({"isbn": isbn, "title": self.books[isbn].title, "unit_price": self.books[isbn].price,
                         "quantity": q, "tax_class": self.books[isbn].tax_class,
                         "category": self.books[isbn].category} for isbn, q in cart.items()),
                       key=lambda ln: (ln["title"].casefold(), ln["isbn"]))
        running = [rule for first, last, rule, _ in self.promotions if first <= n <= last]
        staff = pricing.StaffDiscount(Decimal(10), "Staff purchase") if self.rng.random() < self.mix.staff else None
        savings, discounts = [], {}
        if running or staff:
            priced = pricing.price(lines, running, code, staff)
            savings, discounts = priced.savings, priced.discounts
        for ln in lines:
            ln["discount"] = discounts.get(ln["isbn"], 0)
            ln["total"] = ln["paid"] = ln["unit_price"] * ln["quantity"] - ln["discount"]
        return lines, savings, tax.compute(lines, self.rates, False)

    def _new_reference(self):
        while True:
            code = "".join(self.rng.choices(REFERENCE, k=8))
            if code not in self.references:
                self.references.add(code)
                return f"BK-{code[:4]}-{code[4:]}"

    def _order(self, n, day, sec, pending):
        rng, mix = self.rng, self.mix
        r = rng.random()
        adopted = not pending and r < mix.adopted
        status = "pending" if pending else "paid" if adopted else "failed" if r < mix.adopted + mix.failed else \
            "canceled" if r < mix.adopted + mix.failed + mix.canceled else "paid"
        cart = self._books(adopted)
        if not cart:
            return None
        fair = self.promotions[0]
        code = "FAIR10" if fair[0] <= n <= fair[1] and rng.random() < mix.fair_code else ""
        lines, savings, taxed = self._price(n, cart, code)
        kiosk_id, counter, _, present = rng.choices(COUNTERS, [c[2] for c in COUNTERS])[0]
        method = "card_present" if rng.random() < present else "card"
        settle = min(sec + rng.randint(15, 120), 24 * 3600 - 1)
        self.ids["order"] += 1
        order = Order(self.ids["order"], sec, self.stamp(day, sec), self.stamp(day, settle), self._new_reference(),
                      None if adopted else f"{rng.getrandbits(128):032x}", _stripe_id(rng, "pi_3"), status,
                      (kiosk_id, counter), method, lines, savings, taxed.lines, taxed.total, taxed.subtotal,
                      taxed.tax, sum(ln["discount"] for ln in lines))
        if status == "failed":
            order.error = "Your card was declined."
        elif status == "canceled":
            if rng.random() < 0.5:
                order.intent, order.error = None, "No payment was started."
            else:
                order.error = "Canceled at Stripe."
        elif adopted:
            order.adopted, order.attempt, order.settled = 1, None, order.created
            order.note = f"Adopted from Stripe on {order.created} UTC: the ledger had no record of this paid order."
        if status == "pending":
            for ln in lines:
                self.held[ln["isbn"]] += ln["quantity"]
        elif status == "paid":
            self._sell(n, day, order)
        return order

    def _sell(self, n, day, order):
        """Stock leaves the shelf (mark_paid: over-sold when a line's shelf had fewer copies), the day's sums grow,
        and a refund may be planned."""
        rng, mix = self.rng, self.mix
        for ln in order.lines:
            isbn, copies = ln["isbn"], ln["quantity"]
            order.oversold |= int(self.on_hand[isbn] < copies)
            self.on_hand[isbn] -= copies
            self.sold_copies[isbn] += copies
            if self.on_hand[isbn] <= 0:
                self.sold_out.add(isbn)
        if order.method == "card" and rng.random() < 0.25:
            order.emails = 1
        self._add(day, orders=1, books=sum(ln["quantity"] for ln in order.lines), gross=order.subtotal +
                  order.discount, discounts=order.discount, sales=order.amount, tax=order.tax)
        if order.id <= self.total // 2 or not self.facts:  # an order from the middle of the year, to search for
            self.facts.update(reference=order.reference, intent=order.intent)
        r = rng.random()
        if r < mix.refund_all:
            plan = rng.choices(("all", "keep", "two"), (80, 10, 10))[0]
        elif r < mix.refund_all + mix.refund_some:
            plan = "some"
        else:
            return
        self._later(n, order.sec, order, plan)

    def _later(self, n, after, order, step):
        """Plan a refund step of `order` some days after second `after` of day `n` (dropped past the last day)."""
        rng = self.rng
        days = min(int(rng.expovariate(1 / 3)), self.mix.refund_days)
        if days == 0 and after + 600 >= CLOSE:
            days = 1
        if n + days >= self.mix.days:
            return
        sec = rng.randint(after + 600, CLOSE - 1) if days == 0 else rng.randint(OPEN, CLOSE - 1)
        self.planned += 1
        heapq.heappush(self.later, (n + days, sec, self.planned, order, step))

    def _refund(self, n, day, due):
        """A refund made now, as record_refund writes it: books back (what they come to, tax.returns_value) or an
        amount, never more than is left; its tax apportioned (tax.apportion)."""
        from kiosk.core import tax

        _, sec, _, order, step = due
        rng = self.rng
        left = order.amount - order.refunded
        out = {ln["isbn"]: ln["quantity"] - order.returned.get(ln["isbn"], 0) for ln in order.lines}
        if step in ("all", "second"):
            returns = {isbn: q for isbn, q in out.items() if q}
        elif step in ("some", "two") and len(order.lines) > 1:
            first = min(out)
            returns = {first: out[first]}
        else:
            returns = {}
        tax_rows = [{"tax_class": t.tax_class, "rate": tax.percent(t.rate), "tax": t.tax} for t in order.taxes]
        if returns:
            lines = [{**ln, "returned": order.returned.get(ln["isbn"], 0)} for ln in order.lines]
            amount = min(tax.returns_value(lines, tax_rows, returns, False), left)
        elif step in ("keep", "second"):
            amount = left
        else:
            amount = max(1, min(left, order.amount * 3 // 10 // 50 * 50))
        shares = tax.apportion(tax_rows, order.amount, order.refunded, amount)
        order.refunded += amount
        for isbn, q in returns.items():
            order.returned[isbn] = order.returned.get(isbn, 0) + q
            self.on_hand[isbn] += q
            if self.on_hand[isbn] > 0:
                self.sold_out.discard(isbn)
        self.ids["refund"] += 1
        refund = Refund(self.ids["refund"], self.stamp(day, sec), order, amount, returns,
                        rng.choice(("Changed their mind", "Damaged copy", "Bought twice", None)),
                        _stripe_id(rng, "re_3"), f"{rng.getrandbits(128):032x}", shares)
        self._add(day, refunds=amount, tax_refunded=sum(shares.values()))
        if step == "two" and order.refunded < order.amount:
            self._later(n, sec, order, "second")
        return refund

    def _add(self, day, **sums):
        found = self.sums.setdefault(day.isoformat(), dict.fromkeys(SUMS, 0))
        for key, value in sums.items():
            found[key] += value

    def stock_rows(self):
        """(isbn, on_hand, catalog_qty, held) of every book at the end of the plan."""
        return [(isbn, self.on_hand[isbn], b.stock, self.held[isbn]) for isbn, b in sorted(self.books.items())]

    def summary(self):
        """What the bench needs from the plan: days, sample keys to search by, and the sums per day."""
        best = max(self.sold_copies, key=self.sold_copies.get)
        return {**self.facts, "first_day": self.first_day.isoformat(), "last_day": self.last_day.isoformat(),
                "isbn": best, "isbn_copies": self.sold_copies[best], "sums": self.sums}


def uses_code(order):
    """1 when the order holds its code's use: taken with its hold (or again when paid, if adopted), given back when it
    failed or was canceled."""
    return int(order.status in ("paid", "pending"))


# ---------------------------------------------------------------------------------------------------------------------
# Writing the plan: rows in bulk, or the ledger's own functions


TABLES = {
    "promotions": ("id", "name", "kind", "scope", "percent", "amount", "buy", "free", "category", "isbns", "min_spend",
                   "starts_at", "ends_at", "code", "max_uses", "currency", "enabled", "created_at", "updated_at"),
    "orders": ("id", "reference", "attempt", "payment_intent", "status", "amount", "currency", "last_error",
               "oversold", "adopted", "created_at", "updated_at", "paid_at", "note", "receipt_emails", "kiosk_id",
               "counter", "subtotal", "tax", "tax_inclusive", "method", "discount"),
    "order_lines": ("order_id", "isbn", "title", "unit_price", "quantity", "held", "tax_class", "tax_rate",
                    "discount", "paid"),
    "order_taxes": ("order_id", "tax_class", "rate", "taxable", "tax"),
    "order_discounts": ("order_id", "position", "promotion_id", "name", "code", "amount", "reason", "use_counted"),
    "refunds": ("id", "order_id", "stripe_refund", "amount", "restocked", "reason", "created_at", "request_key",
                "status", "returns", "tax", "taxes"),
    "stock_movements": ("id", "isbn", "delta", "reason", "order_id", "note", "created_at", "refund_id"),
    "audit_log": ("id", "at", "kiosk_id", "counter", "area", "what", "isbn"),
}
SERIAL = ("promotions", "orders", "refunds", "stock_movements", "audit_log")
APP_WHO = COUNTERS[0][:2]


class Bulk:
    """The plan as rows, buffered per table and written a day at a time; refunds change rows written before."""

    def __init__(self):
        self.rows = {table: [] for table in TABLES}
        self.updates = {}
        self.next = {"move": 0, "audit": 0}
        self.uses = 0

    def _move(self, *row):
        self.next["move"] += 1
        self.rows["stock_movements"].append((self.next["move"], *row))

    def _audit(self, stamp, area, what, isbn=None):
        self.next["audit"] += 1
        self.rows["audit_log"].append((self.next["audit"], stamp, *APP_WHO, area, what, isbn))

    def _update(self, sql, args):
        self.updates.setdefault(sql, []).append(args)

    def add(self, event):
        if isinstance(event, Order):
            self._order(event)
        elif isinstance(event, Refund):
            self._refund(event)
        elif isinstance(event, Restock):
            self._move(event.isbn, event.delta, "adjust", None, event.note[:200], event.stamp, None)
            self._audit(event.stamp, "stock", f"{event.note}: {event.count} on hand ({event.delta:+d})", event.isbn)
        else:
            v = event.values
            self.rows["promotions"].append((event.id, *(v[c] for c in TABLES["promotions"][1:-2]), event.stamp,
                                            event.stamp))
            self._audit(event.stamp, "settings", f"Promotion added: {v['name']}" +
                        (f" (code {v['code']})" if v["code"] else ""))

    def _order(self, o):
        from kiosk.core import tax

        paid = o.settled if o.status == "paid" else None
        self.rows["orders"].append((
            o.id, o.reference, o.attempt, o.intent, o.status, o.amount, CURRENCY, o.error, o.oversold, o.adopted,
            o.created, o.settled, paid, o.note, o.emails, *o.who, o.subtotal, o.tax, 0, o.method, o.discount))
        rates = {t.tax_class: tax.percent(t.rate) for t in o.taxes}
        held = o.status == "pending"
        for ln in o.lines:
            self.rows["order_lines"].append((o.id, ln["isbn"], ln["title"], ln["unit_price"], ln["quantity"],
                                             ln["quantity"] if held else 0, ln["tax_class"], rates[ln["tax_class"]],
                                             ln["discount"], ln["total"]))
        for t in o.taxes:
            self.rows["order_taxes"].append((o.id, t.tax_class, tax.percent(t.rate), t.taxable, t.tax))
        for position, s in enumerate(o.savings, 1):
            counted = uses_code(o) if s.code and s.promotion_id else 0
            self.uses += counted
            self.rows["order_discounts"].append((o.id, position, s.promotion_id, s.name, s.code or None, s.amount,
                                                 s.reason or None, counted))
        if paid:
            for ln in sorted(o.lines, key=lambda ln: ln["isbn"]):
                self._move(ln["isbn"], -ln["quantity"], "sale", o.id, None, paid, None)

    def _refund(self, r):
        back = {isbn: q for isbn, q in r.returns.items() if q > 0}
        self.rows["refunds"].append((r.id, r.order.id, r.stripe_refund, r.amount, sum(back.values()), r.reason,
                                     r.stamp, r.request_key, "succeeded", json.dumps(back, sort_keys=True),
                                     sum(r.shares.values()), json.dumps(r.shares, sort_keys=True)))
        for isbn, q in sorted(back.items()):
            self._move(isbn, q, "return", r.order.id, "returned with a refund", r.stamp, r.id)
            self._update("UPDATE order_lines SET returned = returned + ? WHERE order_id = ? AND isbn = ?",
                         (q, r.order.id, isbn))
        self._update("UPDATE orders SET amount_refunded = amount_refunded + ?, updated_at = ?, status = CASE WHEN "
                     "amount_refunded + ? >= amount THEN 'refunded' ELSE 'partially_refunded' END WHERE id = ?",
                     (r.amount, r.stamp, r.amount, r.order.id))

    def flush(self, db):
        for table, rows in self.rows.items():
            if rows:
                db.insert(table, TABLES[table], rows)
                rows.clear()
        for sql, args in self.updates.items():
            db.update(sql, args)
        self.updates.clear()

    def finish(self, db, year):
        """The shelves as the plan left them, the code's uses, and the three counters known to the ledger."""
        self.flush(db)
        db.insert("stock", ("isbn", "on_hand", "catalog_qty", "held"), year.stock_rows())
        db.update("UPDATE promotions SET uses = ? WHERE id = ?", [(self.uses, 1)])
        db.insert("meta", ("key", "value"), [(f"counter:{kiosk_id}", name) for kiosk_id, name, *_ in COUNTERS])


class SqliteRows:
    """Bulk's writer on SQLite: executemany, foreign keys on, one transaction per batch."""

    def __init__(self, path):
        self.conn = sqlite3.connect(path, isolation_level=None)
        for pragma in ("foreign_keys = ON", "journal_mode = WAL", "synchronous = OFF", "cache_size = -400000"):
            self.conn.execute(f"PRAGMA {pragma}")

    def script(self, sql):
        self.conn.executescript(sql)

    def execute(self, sql):
        self.conn.execute(sql)

    def insert(self, table, columns, rows):
        self.conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                              rows)

    def update(self, sql, rows):
        self.conn.executemany(sql, rows)

    def begin(self):
        self.conn.execute("BEGIN")

    def commit(self):
        self.conn.execute("COMMIT")

    def close(self):
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.close()


class PostgresRows(SqliteRows):
    """Bulk's writer on PostgreSQL: COPY, and sequences set past the ids written."""

    def __init__(self, url):  # another driver: SqliteRows.__init__ is not for it
        import psycopg
        self.conn = psycopg.connect(url, autocommit=True)

    def script(self, sql):
        self.conn.execute(sql)

    def insert(self, table, columns, rows):
        with self.conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def update(self, sql, rows):
        with self.conn.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), rows)

    def close(self):
        for table in SERIAL:
            self.conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                              f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)")
        self.conn.execute("VACUUM ANALYZE")  # as autovacuum would have over the year
        self.conn.close()


def _base_schema(rows, dialect):
    """An empty ledger at BASE_VERSION as a shop's would be: version 7 as that release made it new, then the
    kiosk's migrations 8 to 10."""
    from kiosk.ledger import migrations

    rows.script((ROOT / "tests" / "support" / "ledgers" / f"v7.{dialect}.sql").read_text())
    for version in range(8, BASE_VERSION + 1):
        rows.begin()
        for statement in migrations.statements(version, dialect):
            rows.execute(statement)
        rows.execute(f"UPDATE meta SET value = '{version}' WHERE key = 'schema_version'")
        rows.commit()


def write_plan(url, dialect, year, progress=None):
    """Make a BASE_VERSION ledger at `url` (empty) and write the plan's rows into it; returns rows per table."""
    rows = SqliteRows(url) if dialect == "sqlite" else PostgresRows(url)
    bulk, counts = Bulk(), dict.fromkeys(TABLES, 0)
    try:
        _base_schema(rows, dialect)
        rows.begin()
        for n, (day, events) in enumerate(year.days(), 1):
            for event in events:
                bulk.add(event)
            for table, found in bulk.rows.items():
                counts[table] += len(found)
            bulk.flush(rows)
            if n % 10 == 0:
                rows.commit()
                rows.begin()
                if progress and n % 60 == 0:
                    progress(f"{day}: {counts['orders']:,} orders")
        bulk.finish(rows, year)
        rows.commit()
    finally:
        rows.close()
    return counts


def replay(db, year):
    """The plan made by the ledger's own functions, one call per thing that happens, on a ledger init_db made."""
    from kiosk.ledger import orders, promotions, refunds, stock

    for _day, events in year.days():
        for e in events:
            if isinstance(e, Promo):
                assert promotions.save(db, e.values, APP_WHO) == e.id
            elif isinstance(e, Restock):
                assert stock.count_shelf(db, e.isbn, e.count, e.note, APP_WHO) == e.delta
            elif isinstance(e, Refund):
                assert refunds.record_refund(db, e.order.id, stripe_refund=e.stripe_refund, amount=e.amount,
                                             request_key=e.request_key, returned=e.returns, reason=e.reason)
            else:
                _replay_order(db, orders, e)


def _replay_order(db, orders, o):
    lines = [{k: ln[k] for k in ("isbn", "title", "unit_price", "quantity", "discount", "tax_class")}
             for ln in o.lines]
    common = {"lines": lines, "currency": CURRENCY, "who": o.who, "taxes": o.taxes, "inclusive": False,
              "method": o.method, "savings": o.savings}
    if o.adopted:
        row = orders.adopt_paid(db, intent=o.intent, amount=o.amount, reference=o.reference, created_at=o.created,
                                note=o.note, **common)
    else:
        row = orders.open_checkout(db, attempt=o.attempt, hold=True, **common)
        if o.intent:
            orders.attach_intent(db, row["id"], o.intent)
    assert row["id"] == o.id, (row["id"], o.id)
    if o.status == "paid":
        assert orders.mark_paid(db, o.id, o.settled)
    elif o.status == "failed":
        assert orders.mark_failed(db, o.id, o.error, release=True)
    elif o.status == "canceled":
        assert orders.mark_canceled(db, o.id, o.error)
    for _ in range(o.emails):
        assert orders.count_receipt_email(db, o.id, 3)


# ---------------------------------------------------------------------------------------------------------------------
# Checks


def _books():
    from kiosk.core import tax
    from kiosk.core.catalog import load_catalog

    return load_catalog(catalog_path(TITLES), CURRENCY, tax.parse_rates(RATES)).books


def _tables(url):
    """{table: rows as dicts in key order} of every table but meta, with the primary keys SQLAlchemy reads."""
    from sqlalchemy import create_engine, inspect

    from kiosk.ledger.db import connect

    engine = create_engine(url.replace("postgresql:", "postgresql+psycopg:", 1) if url.startswith("postgresql")
                           else f"sqlite:///{url}")
    try:
        found = inspect(engine)
        keys = {t: found.get_pk_constraint(t)["constrained_columns"] for t in found.get_table_names() if t != "meta"}
    finally:
        engine.dispose()
    out = {}
    with connect(url) as db:
        for table, key in keys.items():
            rows = [dict(zip(r.keys(), r, strict=True)) for r in db.execute(f"SELECT * FROM {table}")]
            out[table] = sorted(rows, key=lambda r, key=key: tuple(str(r[k]) for k in key) or
                                tuple(str(v) for v in r.values()))
    return out


def _same(a, b):
    """Equal, or both ledger stamps (the functions stamp the clock), or both order references (new_reference)."""
    if a == b:
        return True
    both = (a, b)
    return all(isinstance(v, str) and (STAMP.fullmatch(v) or re.fullmatch(r"BK-[2-9A-Z]{4}-[2-9A-Z]{4}", v))
               for v in both)


def compare(made, written):
    """Differences between two ledgers' rows: [(table, key, column, made's value, written's value)]."""
    a, b = _tables(made), _tables(written)
    out = [] if sorted(a) == sorted(b) else [("-", "tables", "", sorted(a), sorted(b))]
    for table in sorted(set(a) & set(b)):
        if len(a[table]) != len(b[table]):
            out.append((table, "rows", "", len(a[table]), len(b[table])))
            continue
        for ra, rb in zip(a[table], b[table], strict=True):
            out += [(table, ra.get("id", ""), col, ra[col], rb.get(col)) for col in ra if not _same(ra[col],
                                                                                                   rb.get(col))]
    return out


def report_sums(url, first, last):
    """What the kiosk's reports say for local days first..last: SUMS from day_report, and for a single day also
    sales by hour, by day and day_report's counters added up, each as its own dict."""
    from kiosk.ledger import reports
    from kiosk.ledger.db import connect

    with connect(url) as db:
        report = reports.day_report(db, first, last, zone=ZONE)
        found = {"day_report": {k: report["total"][k] for k in SUMS}}
        if first == last:
            hours = reports.sales_by_hour(db, first, ZONE)
            found["sales_by_hour"] = {"orders": sum(h[2] for h in hours), "sales": sum(h[1] for h in hours)}
            day = reports.sales_by_day(db, first, 14, ZONE)[-1]
            found["sales_by_day"] = {"orders": day[2], "sales": day[1]}
            counters = [t for _, t in report["counters"]]
            found["by_counter"] = {k: sum(t[k] for t in counters) for k in ("orders", "sales", "refunds")}
    return found


def sums_between(summary, first, last):
    """The plan's own sums for local days first..last."""
    out = dict.fromkeys(SUMS, 0)
    for day, sums in summary["sums"].items():
        if first.isoformat() <= day <= last.isoformat():
            for k in SUMS:
                out[k] += sums[k]
    return out


def disagreements(url, summary, first, last):
    """[(report, figure, reported, the plan's)] where the reports of `url` differ from the plan's sums."""
    expected = sums_between(summary, first, last)
    return [(name, k, v, expected[k]) for name, figures in report_sums(url, first, last).items()
            for k, v in figures.items() if v != expected[k]]


def check(dialect, cluster=None, orders=300):
    """A day of `orders` made by the ledger's functions and by the bulk writer plus the kiosk's migrations: raises
    AssertionError when any table's rows differ or a report disagrees with the plan's sums."""
    from kiosk.ledger import migrations, stock
    from kiosk.ledger.db import close_ledgers, connect

    books, today = _books(), datetime.now(ZONE).date()
    folder = cache_dir() / "staff" / "check"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if dialect == "sqlite":
        made, written = str(folder / "made.sqlite3"), str(folder / "written.sqlite3")
    else:
        made, written = (_database(cluster, name) for name in ("staff_check_made", "staff_check_written"))
    try:
        migrations.init_db(made)
        with connect(made) as db:
            stock.sync_stock(db, books)
            replay(db, Year(orders, CHECK, today, books))
        write_plan(written, dialect, Year(orders, CHECK, today, books))
        migrations.init_db(written)
        summary = Year(orders, CHECK, today, books)
        for _ in summary.days():
            pass
        found = compare(made, written)
        assert not found, f"the generator's rows differ from the ledger functions' ({len(found)}): {found[:12]}"
        for url in (made, written):
            wrong = disagreements(url, summary.summary(), today, today)
            assert not wrong, f"the reports disagree with the plan on {url}: {wrong}"
    finally:
        close_ledgers()
    shutil.rmtree(folder, ignore_errors=True)
    return summary.summary()


# ---------------------------------------------------------------------------------------------------------------------
# The cache: PostgreSQL cluster, the v10 ledger per size and day, migrated copies


def use_code():
    """The tree `kiosk` is imported from: $KIOSK_BENCH_CODE (another commit's checkout, to measure it) or this one.
    Only `kiosk` comes from there; the bench is this one's."""
    code = Path(os.environ.get("KIOSK_BENCH_CODE") or ROOT).resolve()
    loaded = sys.modules.get("kiosk")
    if loaded is None and code != ROOT:
        sys.path.insert(0, str(code))
        try:
            import kiosk  # noqa: F401 - from there, once: its modules follow
        finally:
            sys.path.remove(str(code))
        loaded = sys.modules["kiosk"]
    if loaded is not None and Path(loaded.__file__).resolve().parent.parent != code:
        raise RuntimeError(f"kiosk was imported from {loaded.__file__} already; run the staff bench on its own "
                           f"to measure {code}")
    return code


def _pgcluster():
    """tests/support/pgcluster.py, loaded on its own (tests.support's __init__ is the pytest plugin)."""
    spec = importlib.util.spec_from_file_location("bench_pgcluster", ROOT / "tests" / "support" / "pgcluster.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def cluster():
    """The bench's PostgreSQL cluster (PostgreSQL's defaults, fsync off: a cache), started for the block."""
    pgcluster = _pgcluster()
    pg = pgcluster.PgCluster(shared_buffers="128MB", jit="on")
    pg.root = str(cache_dir() / "staff" / "pg")
    pg.data, pg.log = os.path.join(pg.root, "data"), os.path.join(pg.root, "server.log")
    if not os.path.isfile(os.path.join(pg.data, "PG_VERSION")):
        shutil.rmtree(pg.root, ignore_errors=True)
        os.makedirs(pg.root)
        if pg.owner:
            os.chown(pg.root, pg.owner.pw_uid, pg.owner.pw_gid)
        made = pg._run("initdb", "-D", pg.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C",
                       "--no-instructions", owner=True)
        if made.returncode:
            raise RuntimeError(f"initdb failed:\n{made.stdout}{made.stderr}")
    pg.port = free_port()
    pg.start_server(timeout=120)
    atexit.register(pg.stop_server)
    try:
        yield pg
    finally:
        pg.stop_server("fast", timeout=60)
        atexit.unregister(pg.stop_server)


def _admin(pg, *statements):
    """Run statements on the cluster's own database, one by one; the rows of the last, if it has any."""
    import psycopg
    rows = None
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        for statement in statements:
            cursor = conn.execute(statement)
            rows = cursor.fetchall() if cursor.description else None
    return rows


def _database(pg, name, template=None):
    """A new database `name` (a copy of `template`, if given) in the bench's cluster; returns its URL."""
    copy = f" TEMPLATE {template}" if template else ""
    _admin(pg, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}{copy}")
    return pg.url(name)


@dataclass
class Ledger:
    """A ledger the code on the path opens as is: where it is, and the folder make_app takes (its data/ inside)."""

    dialect: str
    orders: int
    url: str
    folder: Path
    version: int
    summary: dict
    made: dict  # seconds: generated / migrated, with the day they were


def _key(dialect):
    """This code's schema version and a digest of the migrations past BASE_VERSION (a changed migration 11
    makes a new copy)."""
    from kiosk.ledger import migrations

    later = [list(migrations.statements(v, dialect)) for v in range(BASE_VERSION + 1, migrations.SCHEMA_VERSION + 1)]
    return migrations.SCHEMA_VERSION, hashlib.sha256(repr(later).encode()).hexdigest()[:8]


def _app_folder(folder):
    """The app's folder: data/ with the Front counter's kiosk id, so the bench's app is that counter."""
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    os.chmod(data, 0o700)
    (data / "kiosk_id").write_text(COUNTERS[0][0])
    return folder


def _base(dialect, orders, pg, today, say):
    """The BASE_VERSION ledger of `orders` for the year ending `today`, made if missing: (url, folder)."""
    name = f"staff_g{GENERATOR}_{orders}_{today:%Y%m%d}"
    root = cache_dir() / "staff" / f"{dialect}-{orders}"
    folder = root / name
    url = str(folder / "data" / "kiosk.sqlite3") if dialect == "sqlite" else pg.url(name)
    if not (folder / "summary.json").is_file():
        for old in root.glob("staff_*") if root.is_dir() else ():
            shutil.rmtree(old, ignore_errors=True)
            if dialect == "postgresql":
                _admin(pg, f"DROP DATABASE IF EXISTS {old.name} WITH (FORCE)",
                       *(f"DROP DATABASE IF EXISTS {old.name}_{s} WITH (FORCE)" for s in _copies(pg, old.name)))
        _app_folder(folder)
        if dialect == "postgresql":
            _database(pg, name)
        say(f"{dialect}, {orders:,} orders: generating the year to {today}")
        started = time.perf_counter()
        year = Year(orders, YEAR, today, _books())
        counts = write_plan(url, dialect, year, progress=lambda s: say(f"  {s}"))
        summary = {**year.summary(), "counts": counts, "generated": round(time.perf_counter() - started, 1),
                   "generated_on": today.isoformat()}
        (folder / "summary.json").write_text(json.dumps(summary))
        say(f"{dialect}, {orders:,} orders: generated in {summary['generated']:.0f} s: {counts}")
    return url, folder, json.loads((folder / "summary.json").read_text())


def _copies(pg, base):
    """Suffixes of the migrated copies of `base` in the cluster."""
    found = _admin(pg, f"SELECT datname FROM pg_database WHERE datname LIKE '{base}\\_%'")
    return [row[0][len(base) + 1:] for row in found]


def ledger(dialect, orders, pg=None, say=print):
    """The ledger of `orders` over the year to today for the code on the path (see the module's docstring),
    generated, copied and migrated as needed."""
    from kiosk.ledger import migrations
    from kiosk.ledger.db import close_ledgers

    today = datetime.now(ZONE).date()
    url, folder, summary = _base(dialect, orders, pg, today, say)
    version, digest = _key(dialect)
    made = {"generated": summary["generated"], "generated_on": summary["generated_on"]}
    if version == BASE_VERSION:
        return Ledger(dialect, orders, url, folder, version, summary, made)
    copy = folder / f"s{version}_{digest}"
    copy_url = str(copy / "data" / "kiosk.sqlite3") if dialect == "sqlite" else pg.url(f"{folder.name}_{copy.name}")
    if not (copy / "migrated.json").is_file():
        for old in folder.glob("s[0-9]*_*"):  # copies another migration text made
            shutil.rmtree(old, ignore_errors=True)
        if dialect == "postgresql":
            _admin(pg, *(f"DROP DATABASE IF EXISTS {folder.name}_{s} WITH (FORCE)" for s in _copies(pg, folder.name)))
        _app_folder(copy)
        close_ledgers()
        if dialect == "sqlite":
            with contextlib.closing(sqlite3.connect(url)) as base:  # what a kiosk on it wrote, into the file
                base.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            shutil.copyfile(url, copy_url)
        else:
            _database(pg, f"{folder.name}_{copy.name}", template=folder.name)
        say(f"{dialect}, {orders:,} orders: the kiosk migrates a copy from {BASE_VERSION} to {version}")
        started = time.perf_counter()
        migrations.init_db(copy_url)
        seconds = round(time.perf_counter() - started, 1)
        wrong = disagreements(copy_url, summary, date.fromisoformat(summary["first_day"]),
                              date.fromisoformat(summary["last_day"]))
        for n in (0, 100, len(summary["sums"]) - 1):
            day = date.fromisoformat(sorted(summary["sums"])[n])
            wrong += disagreements(copy_url, summary, day, day)
        close_ledgers()
        if wrong:
            raise AssertionError(f"after the migration the reports disagree with the plan: {wrong}")
        (copy / "migrated.json").write_text(json.dumps({"migrated": seconds, "migrated_on": today.isoformat()}))
    made.update(json.loads((copy / "migrated.json").read_text()))
    return Ledger(dialect, orders, copy_url, copy, version, summary, made)


def app_env(led):
    """The settings the bench's kiosk runs with on `led` (beside bench.common.kiosk_env's)."""
    env = {"KIOSK_STAFF_PIN": PIN, "KIOSK_TAX_RATES": RATES, "KIOSK_TIMEZONE": ZONE.key, "KIOSK_CURRENCY": CURRENCY,
           "KIOSK_COUNTER_NAME": COUNTERS[0][1]}
    if led.dialect == "postgresql":
        env["KIOSK_DATABASE_URL"] = led.url
    return env


def main(argv):
    """Make (or find) the ledger for N orders (default 1,000,000) and print where it is; --check first."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.staff_ledger")
    parser.add_argument("orders", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), action="append")
    parser.add_argument("--check", action="store_true", help="check the generator against the ledger's functions")
    args = parser.parse_args(argv)
    use_code()
    for dialect in args.db or ("sqlite", "postgresql"):
        with cluster() if dialect == "postgresql" else contextlib.nullcontext() as pg:
            if args.check:
                check(dialect, pg)
                print(f"{dialect}: the generator's rows match the ledger's functions")
            led = ledger(dialect, args.orders, pg, say=lambda s: print(s, file=sys.stderr))
            print(f"{dialect}: {led.url} (schema {led.version}; {led.made})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

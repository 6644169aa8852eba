"""Tax on a sale, in integer minor units: added on top (US sales tax) or included in the prices (EU/UK VAT).

One rule, per tax class: the class's line totals are added up first, then taxed once, rounded half up to
the minor unit (the currency's smallest coin: cents, pence, whole yen). Rounding per class and not per
line is what a receipt shows ("Sales tax 8.875% $4.18") and what the arithmetic of a receipt checks.
"""
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from kiosk.core.coded import Coded

STANDARD = "standard"
_RATE = re.compile(r"(?:100(?:\.0{1,4})?|[0-9]{1,2}(?:\.[0-9]{1,4})?)")
_CLASS = re.compile(r"[a-z][a-z0-9_-]{0,31}")


class TaxRatesError(Coded, ValueError):
    """KIOSK_TAX_RATES is not a list of class:percent pairs; the message says what to write."""


def parse_rates(text):
    """KIOSK_TAX_RATES ("standard:8.875,zero:0") as {class: Decimal percent}; {} when empty."""
    rates = {}
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        name, sep, rate = (s.strip() for s in part.partition(":"))
        name = name.lower()
        if not sep or not _CLASS.fullmatch(name) or not _RATE.fullmatch(rate):
            raise TaxRatesError("tax_rate_part", "%(part)s is not a tax class and a percent from 0 to 100 with at "
                                "most four decimals, like standard:8.875", part=repr(part))
        if name in rates:
            raise TaxRatesError("tax_class_twice", "the class %(name)s is given twice", name=repr(name))
        rates[name] = Decimal(rate)
    return rates


def half_up(value):
    """A Decimal rounded half up to a whole number of minor units."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def percent(rate):
    """A rate as people write it: 8.875, 20, 0 (no trailing zeros)."""
    text = format(rate.normalize(), "f")
    return text


@dataclass
class TaxLine:
    """One class's tax on a sale: its rate, what it was charged on (the class's line totals) and the tax."""

    tax_class: str
    rate: Decimal
    taxable: int
    tax: int


@dataclass
class Taxed:
    """A sale's subtotal (the prices added up), its tax per class and the total to charge."""

    subtotal: int = 0
    lines: list = field(default_factory=list)
    total: int = 0
    inclusive: bool = False

    @property
    def tax(self):
        """All the tax on the sale."""
        return sum(line.tax for line in self.lines)


def compute(lines, rates, inclusive):
    """Tax `lines` (dicts with `total` and `tax_class`) at `rates` ({class: percent}).

    Exclusive: each class's tax = its line totals × rate ÷ 100; total = subtotal + all tax.
    Inclusive: total = subtotal; each class's tax included = its line totals × rate ÷ (100 + rate).
    No rates: no tax at all, and the total is the subtotal."""
    subtotal = sum(line["total"] for line in lines)
    taxed = Taxed(subtotal=subtotal, total=subtotal, inclusive=inclusive)
    if not rates:
        return taxed
    by_class = {}
    for line in lines:
        name = line.get("tax_class") or STANDARD
        by_class[name] = by_class.get(name, 0) + line["total"]
    for name, gross in sorted(by_class.items()):
        rate = rates[name]
        share = Decimal(gross) * rate / (Decimal(100) + rate) if inclusive else Decimal(gross) * rate / 100
        taxed.lines.append(TaxLine(name, rate, gross, half_up(share)))
    if not inclusive:
        taxed.total = subtotal + taxed.tax
    return taxed


def apportion(tax_lines, amount, refunded_before, refunding):
    """The tax per class inside a refund of `refunding` minor units of a sale of `amount`.

    Each class's refunded tax, in all, is its tax × (everything refunded ÷ amount), rounded half up: so
    refunds in several parts add up to exactly the sale's tax once the whole amount is refunded."""
    shares = {}
    for line in tax_lines:
        after = half_up(Decimal(line["tax"]) * (refunded_before + refunding) / amount) if amount else 0
        before = half_up(Decimal(line["tax"]) * refunded_before / amount) if amount else 0
        shares[line["tax_class"]] = after - before
    return shares


def paid_for(line, copies):
    """What was paid for the first `copies` of a sale's line: its share of what the line cost after its discount
    (pricing.py's split), rounded half up, so the copies of a line returned one by one give back exactly what was
    paid for the line once all are back. `line` has quantity and paid."""
    return half_up(Decimal(line["paid"]) * copies / line["quantity"]) if line["quantity"] else 0


def returns_value(lines, tax_lines, returning, inclusive):
    """What the customer paid for the copies in `returning` ({isbn: copies}) of a sale, in minor units.

    What was paid for them (paid_for: after the sale's promotions), and when tax was added on top, the tax on
    that: a class's tax given back in all is its rate on all it had paid for copies returned so far, rounded half up
    as at the sale, so a $12.00 book at 8.875% gives back $13.07, and returns made in several parts add up to
    exactly the class's tax once every copy is back. `lines` are the sale's lines (isbn, unit_price, quantity, paid,
    returned: copies already back or held for a refund, tax_class); `tax_lines` its tax per class as sold
    (tax_class, rate). With the tax included in the prices, what was paid is what is given back."""
    back_before, back_now = {}, {}
    for line in lines:
        name = line["tax_class"] or STANDARD
        before, now = line["returned"], line["returned"] + returning.get(line["isbn"], 0)
        back_before[name] = back_before.get(name, 0) + paid_for(line, before)
        back_now[name] = back_now.get(name, 0) + paid_for(line, now) - paid_for(line, before)
    value = sum(back_now.values())
    if inclusive:
        return value
    for line in tax_lines:
        name, rate = line["tax_class"], Decimal(line["rate"])
        before = back_before.get(name, 0)
        value += half_up(Decimal(before + back_now.get(name, 0)) * rate / 100) - half_up(Decimal(before) * rate / 100)
    return value

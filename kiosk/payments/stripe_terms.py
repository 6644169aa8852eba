"""What the kiosk writes into Stripe and reads back, in one place: PaymentIntent and refund metadata, and the
Idempotency-Keys of its requests. The checkout writes an intent's metadata and the reconciler reads it back (a
paid intent the ledger lost is rebuilt from it), so both sides live here, with a round-trip test
(tests/test_stripe_terms.py).

Stripe's rules (API reference, "Metadata"): at most 50 keys, keys up to 40 characters, values up to 500."""
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from kiosk.core import tax

METADATA_VALUE_MAX = 500  # Stripe's limit on one metadata value
ITEM = re.compile(r"([0-9]{13})x([0-9]{1,3})")
ITEMS_KEY = re.compile(r"items(?:_([0-9]+))?")


def intent_key(kiosk_id, attempt, tries):
    """The Idempotency-Key for creating a checkout attempt's PaymentIntent.

    Stripe replays a 5xx for the same key for 24 hours, so after one the next try takes a new key (the order's
    intent_tries), once Stripe has been asked whether an intent was made after all."""
    base = f"{kiosk_id}-{attempt}"
    return base if not tries else f"{base}-{tries}"


def refund_key(kiosk_id, request_key, held_id):
    """The Idempotency-Key for making a refund the ledger holds (each reservation its own)."""
    return f"{kiosk_id}-refund-{request_key}-{held_id}"


def reader_key(request_key):
    """The Idempotency-Key for registering a card reader from one staff form (sent twice, it registers once)."""
    return f"reader-{request_key}"


def location_key(request_key):
    """The Idempotency-Key for creating a Terminal location from one staff form."""
    return f"location-{request_key}"


def refund_metadata(kiosk_id, reference, request_key):
    """A refund's metadata: the staff request it was made for, so a form sent again finds it at Stripe."""
    return {"kiosk_id": kiosk_id, "order_ref": reference, "request_key": request_key}


def request_key_of(refund):
    """The staff request a refund was made for (refund_metadata), or "" for one made elsewhere (the Dashboard)."""
    return refund.metadata.get("request_key") or ""


def find_refund(gateway, intent_id, request_key):
    """The refund of a payment made for a staff request, or None; raises PaymentError."""
    return next((r for r in gateway.refunds_for(intent_id) if request_key_of(r) == request_key), None)


def find_intent(gateway, reference, since):
    """The newest PaymentIntent made since `since` for the order `reference` (intent_metadata), or None."""
    return gateway.find_intent("order_ref", reference, since)


def _items(lines):
    """ISBN×quantity pairs, split across keys so no value passes Stripe's 500-character limit."""
    return _chunked("items", [f"{line['isbn']}x{line['quantity']}" for line in lines])


def _chunked(key, parts):
    """Comma-separated `parts` under `key`, `key_2`, … so no value passes Stripe's 500-character limit."""
    chunks, current = [], ""
    for item in parts:
        if current and len(current) + 1 + len(item) > METADATA_VALUE_MAX:
            chunks.append(current)
            current = item
        else:
            current = f"{current},{item}" if current else item
    chunks.append(current)
    return {(key if i == 0 else f"{key}_{i + 1}"): chunk for i, chunk in enumerate(chunks)}


def intent_metadata(kiosk_id, reference, method, priced):
    """A checkout's PaymentIntent metadata: which counter, order and way to pay, the books, and the tax as the
    receipt has it (class:rate:tax per class), so Stripe's record matches the receipt and a lost sale can be
    rebuilt."""
    metadata = {"kiosk_id": kiosk_id, "order_ref": reference, "method": method, **_items(priced.lines)}
    if priced.savings:
        # The savings as the receipt has them (promotion id, or "staff", and minor units off), each line's share.
        metadata.update(discount=str(priced.discount),
                        savings=",".join(f"{s.promotion_id or 'staff'}:{s.amount}" for s in priced.savings)[:500],
                        **_chunked("discounts", [f"{ln['isbn']}:{ln['discount']}" for ln in priced.lines
                                                 if ln["discount"]]))
    if priced.taxes:
        metadata.update(subtotal=str(priced.subtotal), tax_included="yes" if priced.inclusive else "no",
                        tax=",".join(f"{t.tax_class}:{tax.percent(t.rate)}:{t.tax}" for t in priced.taxes))
    return metadata


@dataclass
class IntentRecord:
    """What a PaymentIntent's metadata says of the sale, as the kiosk wrote it."""

    kiosk_id: str = ""
    reference: str = ""
    method: str = ""
    items: list = field(default_factory=list)  # (ISBN-13, quantity)
    inclusive: bool = False
    taxes: list = field(default_factory=list)  # (class, rate as Decimal, tax in minor units)
    discounts: dict = field(default_factory=dict)  # ISBN-13 -> its line's share of the savings
    savings: list = field(default_factory=list)  # (promotion id, or None for the staff discount; minor units)

    def tax_lines(self, lines):
        """The tax per class as charged (tax.TaxLine), what each class was charged on taken from rebuilt lines."""
        taxable = {}
        for line in lines:
            paid = line["unit_price"] * line["quantity"] - line.get("discount", 0)
            taxable[line["tax_class"]] = taxable.get(line["tax_class"], 0) + paid
        return [tax.TaxLine(tax_class, rate, taxable.get(tax_class, 0), amount)
                for tax_class, rate, amount in self.taxes]


def items_from_metadata(metadata):
    """The (ISBN-13, quantity) pairs an intent's `items`, `items_2`, … metadata lists, a book listed twice once."""
    keys = sorted((k for k in metadata if ITEMS_KEY.fullmatch(k)), key=lambda k: int(ITEMS_KEY.fullmatch(k)[1] or 1))
    items = {}
    for match in (m for k in keys for m in ITEM.finditer(metadata[k])):
        items[match.group(1)] = items.get(match.group(1), 0) + int(match.group(2))
    return [(isbn, quantity) for isbn, quantity in items.items() if quantity > 0]


def _pairs(metadata, key):
    """The "a:b" pairs of `key`, `key_2`, … as a list of (a, b), anything unreadable left out."""
    keys = sorted((k for k in metadata if re.fullmatch(rf"{key}(?:_[0-9]+)?", k)), key=lambda k: (len(k), k))
    return [tuple(part.split(":")) for k in keys for part in metadata[k].split(",") if part.count(":") == 1]


def _taxes(value):
    found = []
    for part in (value or "").split(","):
        bits = part.split(":")
        if len(bits) == 3 and bits[2].isdigit():
            try:
                found.append((bits[0], Decimal(bits[1]), int(bits[2])))
            except InvalidOperation:
                continue
    return found


def method_of(intent):
    """How a PaymentIntent was offered: "card_present" (the card reader) or "card" (typed on the screen). The kiosk
    writes its choice into metadata; the read-only payment_method_types answers for intents made before it did."""
    return intent.metadata.get("method") or ("card_present" if "card_present" in intent.payment_method_types
                                             else "card")


def read_intent_metadata(metadata):
    """An IntentRecord from a PaymentIntent's metadata (anything unreadable is left out, never guessed)."""
    return IntentRecord(kiosk_id=metadata.get("kiosk_id") or "", reference=metadata.get("order_ref") or "",
                        method=metadata.get("method") or "", items=items_from_metadata(metadata),
                        inclusive=metadata.get("tax_included") == "yes", taxes=_taxes(metadata.get("tax")),
                        discounts={isbn: int(off) for isbn, off in _pairs(metadata, "discounts")
                                   if ITEM.fullmatch(f"{isbn}x1") and off.isdigit()},
                        savings=[(None if who == "staff" else int(who), int(amount))
                                 for who, amount in _pairs(metadata, "savings")
                                 if (who == "staff" or who.isdigit()) and amount.isdigit() and int(amount) > 0])

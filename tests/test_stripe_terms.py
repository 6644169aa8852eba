"""What the kiosk writes into Stripe it reads back the same: a checkout's PaymentIntent metadata, as the reconciler
reads it to rebuild a lost sale, and a refund's request key; and each Idempotency-Key is the request's own."""
from decimal import Decimal

from kiosk.core import tax
from kiosk.core.cart import PricedCart
from kiosk.payments import stripe_terms
from kiosk.payments.gateway import Intent, Refund


def test_a_checkouts_metadata_reads_back_as_written_even_for_a_cart_of_thirty_books():
    lines = [{"isbn": f"978{n:010d}", "title": "t", "unit_price": 1000 + n, "quantity": 10 + n % 10,
              "tax_class": "reduced" if n % 2 else "standard"} for n in range(30)]
    taxes = [tax.TaxLine("reduced", Decimal("5"), 15000, 750), tax.TaxLine("standard", Decimal("20"), 16000, 3200)]
    priced = PricedCart(lines=lines, subtotal=31000, taxes=taxes, inclusive=True)
    written = stripe_terms.intent_metadata("kiosk_1", "BK-ABCD-EFGH", "card_present", priced)
    # Within Stripe's limits: 50 keys, keys up to 40 characters, values up to 500.
    assert len(written) <= 50 and all(len(k) <= 40 and len(v) <= 500 for k, v in written.items())
    assert "items_2" in written  # thirty books do not fit in one value
    record = stripe_terms.read_intent_metadata(written)
    assert (record.kiosk_id, record.reference, record.method, record.inclusive) == \
        ("kiosk_1", "BK-ABCD-EFGH", "card_present", True)
    assert record.items == [(line["isbn"], line["quantity"]) for line in lines]
    assert record.tax_lines(lines) == [
        tax.TaxLine("reduced", Decimal("5"), sum(ln["unit_price"] * ln["quantity"] for ln in lines[1::2]), 750),
        tax.TaxLine("standard", Decimal("20"), sum(ln["unit_price"] * ln["quantity"] for ln in lines[::2]), 3200)]
    intent = Intent(id="pi_1", status="succeeded", amount=1, currency="USD", metadata=written,
                    payment_method_types=("card",))
    assert stripe_terms.method_of(intent) == "card_present"  # what the kiosk wrote wins over Stripe's list


def test_an_intent_from_before_method_was_written_is_told_by_its_types():
    for types, method in ((("card_present",), "card_present"), (("card",), "card")):
        intent = Intent(id="pi_1", status="succeeded", amount=1, currency="USD", metadata={"kiosk_id": "k"},
                        payment_method_types=types)
        assert stripe_terms.method_of(intent) == method


def test_unreadable_metadata_is_left_out_never_guessed():
    record = stripe_terms.read_intent_metadata({"items": "junk,97834349x,9783434922599x2", "tax": "a:b:c,x:5:oops"})
    assert record.items == [("9783434922599", 2)] and record.taxes == [] and record.kiosk_id == ""


def test_a_refunds_request_key_reads_back_and_each_request_has_its_own_key():
    refund = Refund(id="re_1", amount=100, status="succeeded",
                    metadata=stripe_terms.refund_metadata("kiosk_1", "BK-1", "f" * 32))
    assert stripe_terms.request_key_of(refund) == "f" * 32
    assert stripe_terms.request_key_of(Refund(id="re_2", amount=1, status="succeeded")) == ""  # the Dashboard's
    keys = {stripe_terms.intent_key("kiosk_1", "a1", tries) for tries in range(3)}
    keys |= {stripe_terms.refund_key("kiosk_1", "f" * 32, held) for held in (1, 2)}
    assert len(keys) == 5 and stripe_terms.intent_key("kiosk_1", "a1", 0) == "kiosk_1-a1"

"""Product code returns codes, the web layer words them: every code raised anywhere in kiosk/ has its words in
kiosk/web/words.py, and an error the table does not know is never said in its English."""
import ast
from pathlib import Path

import pytest

from kiosk import create_app
from kiosk.admin import configure
from kiosk.core.cart import CartError
from kiosk.core.coded import Coded
from kiosk.ledger.db import LedgerError
from kiosk.payments.gateway import PaymentError
from kiosk.web import words
from tests.support.settings import make_settings

KIOSK = Path(__file__).resolve().parents[1] / "kiosk"
# The errors a page shows, by the class that raises them: the coded ones, and PaymentError (worded by its kind).
CODED_ROOTS = {"Coded", "LedgerError", "CartError", "CatalogError", "EnvFileError", "TaxRatesError"}
PAYMENT_ROOTS = {"PaymentError"}


def _classes(trees, roots):
    """The names of the classes in kiosk/ that derive from one of `roots`, the roots included."""
    found = set(roots)
    grew = True
    while grew:
        grew = False
        for tree in trees:
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in found and any(
                        (b.id if isinstance(b, ast.Name) else getattr(b, "attr", None)) in found for b in node.bases):
                    found.add(node.name)
                    grew = True
    return found


def _called(node):
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def raised_codes():
    """({code: [where]} of every coded error made in kiosk/, {kind: [where]} of every PaymentError, [sites whose
    code is not a literal])."""
    sources = {path: ast.parse(path.read_text(encoding="utf-8")) for path in KIOSK.rglob("*.py")}
    coded, payment = _classes(sources.values(), CODED_ROOTS), _classes(sources.values(), PAYMENT_ROOTS)
    # A class with its own __init__ (OutOfStock) names its code where it calls super().__init__.
    own_init = {node.name for tree in sources.values() for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
                and node.name in coded and any(isinstance(f, ast.FunctionDef) and f.name == "__init__"
                                               for f in node.body)} - {"Coded"}
    codes, kinds, unreadable = {}, {}, []
    for path, tree in sources.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            where = f"{path.relative_to(KIOSK.parent)}:{node.lineno}"
            name = _called(node)
            if name == "__init__" and isinstance(node.func.value, ast.Call) and _called(node.func.value) == "super":
                name = "super"  # checked below only when inside a coded class's __init__
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value.islower():
                    codes.setdefault(first.value, []).append(where)
            elif name in coded and name not in PAYMENT_ROOTS and name not in own_init:
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    codes.setdefault(first.value, []).append(where)
                elif not (isinstance(first, ast.Name) and path.name == "coded.py"):
                    unreadable.append(where)
            elif name in payment:
                kind = node.args[1] if len(node.args) > 1 else None
                if isinstance(kind, ast.Constant) and isinstance(kind.value, str):
                    kinds.setdefault(kind.value, []).append(where)
    return codes, kinds, unreadable


def test_every_code_raised_in_the_kiosk_has_its_words():
    codes, kinds, unreadable = raised_codes()
    assert not unreadable, f"a coded error whose code is not written out where it is raised: {unreadable}"
    assert len(codes) >= 50 and len(kinds) >= 8, (sorted(codes), sorted(kinds))  # the scan found the raise sites
    missing = {code: where for code, where in codes.items() if code not in words.MESSAGES}
    assert not missing, f"codes without words in kiosk/web/words.py: {missing}"
    unworded = {kind: where for kind, where in kinds.items() if kind != "card" and kind not in words.PAYMENT}
    assert not unworded, f"PaymentError kinds without words in kiosk/web/words.py: {unworded}"
    # The card reader's Stripe codes (gateway.READER_ERRORS) are worded by code.
    from kiosk.payments.gateway import READER_ERRORS
    assert set(READER_ERRORS) <= set(words.PAYMENT) and {k for k, _ in READER_ERRORS.values()} <= set(words.PAYMENT)


def test_a_code_without_words_fails_the_scan(tmp_path, monkeypatch):
    monkeypatch.setattr(words, "MESSAGES", {k: v for k, v in words.MESSAGES.items() if k != "refund_amount"})
    codes, _, _ = raised_codes()
    assert "refund_amount" in codes and "refund_amount" not in words.MESSAGES


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return create_app(make_settings(tmp_path_factory.mktemp("words"), None), testing=True)


def test_say_words_codes_counts_and_unknown_errors(app):
    with app.test_request_context("/"):
        assert words.say(CartError("sold_out", "Sorry, “%(title)s” is sold out.", title="Emma")) == \
            "Sorry, “Emma” is sold out."
        assert words.say(CartError("only_left", "x", num=1, title="Emma")) == "Only 1 copy of “Emma” left."
        assert words.say(CartError("only_left", "x", num=3, title="Emma")) == "Only 3 copies of “Emma” left."
        english = LedgerError("no_such_code", "An English sentence for the log.")
        assert str(english) == "An English sentence for the log."
        assert words.say(english) == "This could not be done. Staff: see the kiosk log."
        assert words.say(ValueError("raw English")) == "This could not be done. Staff: see the kiosk log."
        paid = LedgerError("refund_not_paid", "Order %(reference)s is %(status)s.", reference="R1",
                           status="partially_refunded")
        assert words.say(paid) == "Order R1 is partially refunded; only a paid order can be refunded."
        # A parameter that is itself a coded error is said too.
        nested = Coded("tax_rates", "%(problem)s.", problem=Coded("tax_class_twice", "x", name="'a'"))
        assert words.say(nested).startswith("the class 'a' is given twice. Give each tax class")


def test_stripe_declines_are_said_by_code_and_an_unknown_message_in_a_frame(app):
    with app.test_request_context("/"):
        funds = PaymentError("Your card has insufficient funds.", "card", code="card_declined",
                             decline="insufficient_funds")
        assert words.say(funds) == "Your card has insufficient funds."
        assert words.say(PaymentError("Your card has expired.", "card", code="expired_card")) == \
            "Your card has expired."
        odd = PaymentError("Something Stripe said.", "card", code="some_new_code")
        assert words.say(odd) == "Your card was not accepted: Something Stripe said."
        assert words.decline("lost_card", "Your card was declined.") == "Your card was declined."
        assert words.decline("", "") == "Your card was declined."
        offline = PaymentError("x", "reader_offline", True, code="terminal_reader_timeout")
        assert words.say(offline).startswith("The card reader did not answer in time.")
        assert words.say(PaymentError("x", "network", True)).startswith("Payments are briefly unavailable.")
        assert words.say(PaymentError("x", "a_kind_nobody_wrote")) == \
            "Stripe could not take this payment request. Staff: see the kiosk log."


def test_settings_problems_are_codes_the_form_words(tmp_path, app):
    settings = make_settings(tmp_path, None)
    proposal = configure.check({"shop_name": "", "currency": "zzz", "locale": "en_US", "idle_seconds": "5",
                                "tax_rates": "standard:8,standard:9", "pin": "12", "pin_again": "12"},
                               {}, settings, first_run=False)
    assert {"shop_name", "currency", "idle_seconds", "tax_rates", "pin"} <= set(proposal.errors)
    assert all(isinstance(e, Coded) for e in proposal.errors.values()), proposal.errors
    with app.test_request_context("/"):
        assert words.say(proposal.errors["pin"]) == "Use digits only, at least 6 of them." or \
            words.say(proposal.errors["pin"]) == "Use at least 6 digits."
        assert words.say(proposal.errors["tax_rates"]).startswith("the class 'standard' is given twice.")

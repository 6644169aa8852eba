"""Where the kiosk's words live: product code returns kinds and codes, and this module turns them into text.

Each code maps to its lazy_gettext text with named placeholders; an error or outcome carrying a `code` (and its
`params`) is said with `say()`, in the language of the page being served.
"""
import json

from kiosk.core.coded import Coded
from kiosk.core.i18n import gettext as _
from kiosk.core.i18n import lazy_gettext as _l
from kiosk.core.i18n import ngettext
from kiosk.payments.gateway import PaymentError

# An order's status (kiosk.ledger.schema.STATUSES), as staff read it.
STATUS = {"pending": _l("pending"), "paid": _l("paid"), "failed": _l("failed"), "canceled": _l("canceled"),
          "refunded": _l("refunded"), "partially_refunded": _l("partially refunded")}

# Why a book's stock moved (the ledger's stock_movements.reason).
MOVEMENT = {"catalog": _l("catalog"), "sale": _l("sale"), "return": _l("return"), "adjust": _l("adjust")}

# How an order was paid (orders.method).
PAID_BY = {"card_present": _l("reader"), "card": _l("typed card")}


# A book's fields (the catalog's columns), as a preview names what changes.
BOOK_FIELD = {"title": _l("title"), "author": _l("author"), "price": _l("price"), "stock": _l("copies"),
              "cover": _l("cover"), "description": _l("description"), "category": _l("category"),
              "tax_class": _l("tax class"), "isbn": _l("ISBN")}


def book_field(name):
    """A catalog field's name in words."""
    return str(BOOK_FIELD.get(name, name or ""))


def status(code):
    """An order status in words."""
    return str(STATUS.get(code, code or ""))


def movement(code):
    """A stock movement's reason in words."""
    return str(MOVEMENT.get(code, code or ""))


def paid_by(method):
    """How an order was paid, in words ("reader", "typed card")."""
    return str(PAID_BY.get(method, method or ""))


def _counted(kind, n):
    """One part of a sweep's report: "2 settled"."""
    texts = {"settled": ngettext("%(num)d settled", "%(num)d settled", n),
             "adopted": ngettext("%(num)d adopted", "%(num)d adopted", n),
             "attached": ngettext("%(num)d attached", "%(num)d attached", n),
             "canceled": ngettext("%(num)d canceled", "%(num)d canceled", n),
             "refunds": ngettext("%(num)d refund", "%(num)d refunds", n)}
    return texts.get(kind, f"{n} {kind}")


def sweep(result):
    """A check with Stripe as reconcile stores it (JSON: counts, an error) in words; older plain text as it is."""
    try:
        found = json.loads(result or "")
    except ValueError:
        return result or ""
    if not isinstance(found, dict):
        return result
    if "unreachable" in found:
        return _("Stripe could not be reached: %(why)s", why=found["unreachable"])
    parts = [_counted(kind, n) for kind, n in found.get("counts", {}).items() if n]
    if found.get("errors"):
        parts.append(ngettext("%(num)d could not be checked (%(first)s)", "%(num)d could not be checked (%(first)s)",
                              found["errors"], first=found.get("first_error", "")))
    return ", ".join(parts) or _("nothing to do")


def say(error):
    """What a coded error (with `code` and `params`) says, in the page's language; a generic sentence, never the
    error's English, for a code this table does not know (or an error that carries none)."""
    if error is None:
        return ""
    if isinstance(error, list):  # several problems with one field, said in turn
        return " ".join(say(e) for e in error)
    if isinstance(error, PaymentError):
        return _payment(error)
    text = MESSAGES.get(getattr(error, "code", None))
    if text is None:
        return _("This could not be done. Staff: see the kiosk log.")
    params = {name: say(value) if isinstance(value, Coded) else PARAM_WORDS[name](value) if name in PARAM_WORDS
              else value for name, value in getattr(error, "params", {}).items()}
    if callable(text):  # a sentence with a count (params["num"]), through ngettext
        return text(params)
    return str(text) % params if "%(" in str(text) else str(text)


def decline(code, reason=""):
    """Why a card was declined, from Stripe's decline (or error) code; Stripe's own English `reason`, inside a
    translated frame, for a code this table does not know."""
    text = DECLINES.get(code or "")
    if text is not None:
        return str(text)
    if reason:
        return _("Your card was not accepted: %(reason)s", reason=reason)
    return str(DECLINED)


def _payment(error):
    """A PaymentError in words: a card's decline by Stripe's codes, anything else by Stripe's code or its kind."""
    if error.kind == "card":
        if error.message == CARD_DECLINED and error.decline not in DECLINES and error.code not in DECLINES:
            return _("The card was declined. Try another card.")
        return decline(error.decline if error.decline in DECLINES else error.code, error.message)
    text = PAYMENT.get(error.code) or PAYMENT.get(error.kind) or PAYMENT["invalid"]
    return str(text) % error.params if "%(" in str(text) else str(text)


# The values inside a sentence that are codes too, said in words.
PARAM_WORDS = {"status": status}

# Stripe's decline codes (and a card error's own code) as a customer reads them, in Stripe's own words ("Decline
# codes", "Error codes"); the page adds what to do next.
DECLINED = _l("Your card was declined.")
DECLINES = {
    "card_declined": DECLINED, "generic_decline": DECLINED, "do_not_honor": DECLINED, "lost_card": DECLINED,
    "stolen_card": DECLINED, "pickup_card": DECLINED, "fraudulent": DECLINED, "restricted_card": DECLINED,
    "insufficient_funds": _l("Your card has insufficient funds."),
    "expired_card": _l("Your card has expired."),
    "incorrect_cvc": _l("Your card's security code is incorrect."),
    "invalid_cvc": _l("Your card's security code is incorrect."),
    "incorrect_number": _l("Your card number is incorrect."),
    "processing_error": _l("An error occurred while processing your card."),
    "authentication_required": _l("Your card was declined: your bank asks you to confirm this payment."),
    "payment_intent_authentication_failure": _l("Your bank could not confirm this payment."),
    "card_not_supported": _l("Your card does not support this kind of purchase."),
    "currency_not_supported": _l("Your card does not support this currency."),
    "card_velocity_exceeded": _l("Your card has reached its limit."),
    "withdrawal_count_limit_exceeded": _l("Your card has reached its limit."),
    "offline_pin_required": _l("Insert your card and enter its PIN."),
    "online_or_offline_pin_required": _l("Insert your card and enter its PIN."),
    "incorrect_pin": _l("The PIN is incorrect."),
    "pin_try_exceeded": _l("Too many PIN attempts."),
}
# What the gateway says of a card error Stripe gave no message for.
CARD_DECLINED = "The card was declined. Try another card."

# A PaymentError by Stripe's code (the card reader's) or by the kind of failure (PaymentError.kind).
UNAVAILABLE = _l("Payments are briefly unavailable. Your cart is kept; please try again in a moment.")
READER_OFFLINE = _l("The card reader is offline. Staff: check that it is switched on and connected to the internet. "
                    "You can type your card instead.")
PAYMENT = {
    "terminal_reader_offline": READER_OFFLINE,
    "terminal_reader_busy": _l("The card reader is busy with another payment. Try again in a moment, or type your "
                               "card instead."),
    "terminal_reader_timeout": _l("The card reader did not answer in time. Try again in a moment, or type your card "
                                  "instead."),
    "reader_offline": READER_OFFLINE,
    "reader_busy": _l("The card reader is busy with another payment. Try again in a moment, or type your card "
                      "instead."),
    "rate_limit": UNAVAILABLE, "network": UNAVAILABLE, "server": UNAVAILABLE,
    "auth": _l("Payments are not set up correctly: Stripe refused the kiosk's secret key. Staff: check "
               "STRIPE_SECRET_KEY in .env."),
    "idempotency": _l("This checkout changed while it was being paid. Please start the payment again."),
    "not_found": _l("Stripe does not know this payment."),
    "invalid": _l("Stripe could not take this payment request. Staff: see the kiosk log."),
    "config": _l("A live secret key goes only to Stripe's own API (%(api)s), not to %(base)s. Staff: remove "
                 "STRIPE_API_BASE from .env."),
    "signature": _l("The webhook signature does not match."),
    "refund_failed": _l("Stripe reports the refund as %(status)s."),
    "api": _l("Stripe could not take this payment request. Staff: see the kiosk log."),
}

# Coded errors from the core, ledger and admin rooms: code -> text with the error's params; where a count
# (params["num"]) is said, a function of the params that says it through ngettext.
MESSAGES = {
    # the cart (kiosk.core.cart, kiosk.visit.customer)
    "quantity_range": _l("Choose a quantity from 1 to %(most)s."),
    "sold_out": _l("Sorry, “%(title)s” is sold out."),
    "only_left": lambda p: ngettext("Only %(num)s copy of “%(title)s” left.",
                                    "Only %(num)s copies of “%(title)s” left.", p.pop("num"), **p),
    "per_book_most": _l("At most %(most)s copies of one book per purchase."),
    "lines_most": _l("The cart holds at most %(most)s different books."),
    "not_in_cart": _l("That book is not in the cart."),
    "visit_ended": _l("Your visit on this kiosk has ended. Please start again."),
    "paying": _l("Finish or cancel this payment first: your cart is being paid for."),
    # promotion codes (kiosk.visit.customer, kiosk.ledger.promotions)
    "code_unknown": _l("The code %(given)s is not one of this shop's."),
    "code_ended": _l("The code %(given)s has ended."),
    "code_used_up": _l("The code %(given)s has been used up."),
    "code_guessing": _l("Too many codes that are not ours were tried. Please wait a minute, or ask staff."),
    "promotion_code_taken": _l("Another promotion has that code already."),
    "promotion_refused": _l("The ledger refused this promotion: check its values."),
    # the promotions form and CSV (kiosk.admin.promotion_forms)
    "promotion_name_missing": _l("Give the promotion a name; customers see it on their cart and receipt."),
    "promotion_kind": _l("Choose what the promotion does: a percent off, an amount off, or buy some and get the "
                         "cheapest free (percent, amount or bundle)."),
    "promotion_scope": _l("Choose which books it is for: the whole cart, a category or listed books (cart, category "
                          "or books)."),
    "promotion_percent": _l("Write the percent off as a number above 0 and at most 100, with at most two decimals, "
                            "like 10 or 12.5."),
    "promotion_amount": _l("Write the amount off in %(currency)s, above zero, like %(example)s."),
    "promotion_min_spend": _l("Write the least the cart must come to in %(currency)s, like %(example)s, or leave it "
                              "empty."),
    "promotion_buy": _l("Write how many books to buy as a whole number from 2 to %(most)s."),
    "promotion_free": _l("Write how many of them are free as a whole number from 1 to %(most)s (fewer than the books "
                         "bought)."),
    "promotion_category_missing": _l("Choose the category the promotion is for."),
    "promotion_no_categories": _l("The catalog's books have no categories yet: give them a category in the catalog "
                                  "first, or list the books by ISBN."),
    "promotion_category_unknown": _l("The catalog has no category %(category)s. Its categories: %(known)s."),
    "promotion_isbn": _l("%(isbn)s is not an ISBN (10 or 13 digits with a right check digit); check it against the "
                         "book's barcode."),
    "promotion_isbns_missing": _l("List the books' ISBNs, scanned or typed, separated by commas or spaces."),
    "promotion_isbns_many": _l("List at most %(most)s books; for more, give them a category."),
    "promotion_time": _l("Write the date and time like 2026-12-07 09:00 (a date alone is the whole day), or leave it "
                         "empty."),
    "promotion_ends_first": _l("The end must come after the start."),
    "promotion_code": _l("A code is 3 to 32 letters (A to Z), digits or hyphens, like FAIR10; or leave it empty for "
                         "a promotion everyone gets."),
    "promotion_max_uses": _l("Write the most uses as a whole number from 1 to %(most)s, or leave it empty for no "
                             "limit."),
    "promotion_max_uses_code": _l("A limit of uses needs a code: give the promotion a code, or leave the limit "
                                  "empty."),
    "promotion_csv_rows": lambda p: ngettext("%(num)s problem in the promotions file; nothing was saved.",
                                             "%(num)s problems in the promotions file; nothing was saved.",
                                             p.pop("num"), **p),
    "promotion_csv_too_large": _l("The promotions file is larger than %(mb)s MB; it holds at most %(most)s "
                                  "promotions."),
    "promotion_csv_not_utf8": _l("The promotions file is not UTF-8 (line %(line)s has a character it cannot read). "
                                 "In the spreadsheet, save it as 'CSV UTF-8'."),
    "promotion_csv_not_csv": _l("That file is not a CSV file (it looks like a spreadsheet or another binary file). In "
                                "the spreadsheet, save it as 'CSV UTF-8'."),
    "promotion_csv_empty": _l("The promotions file is empty. Its first row names the columns: %(columns)s."),
    "promotion_csv_columns": _l("The promotions file's first row must name its columns, each once, from %(columns)s "
                                "(name, kind and scope are needed); it has %(header)s."),
    "promotion_csv_cells": _l("This row has more cells than the first row has columns: check for an unquoted "
                              "comma."),
    "promotion_csv_too_many": _l("The promotions file has more than %(most)s rows; split it."),
    "promotion_csv_no_rows": _l("The promotions file has no rows under its first row."),
    "promotion_csv_name_twice": _l("Line %(first)s has a promotion of this name already."),
    # the ledger
    "out_of_stock": _l("“%(title)s”: %(available)s left."),
    "refund_not_paid": _l("Order %(reference)s is %(status)s; only a paid order can be refunded."),
    "refund_amount": _l("The refund must be more than zero and at most what is left to refund."),
    "refund_copies": _l("More copies are marked as returned than were sold and not yet returned."),
    "refund_quote_changed": _l("Another refund of this order was made meanwhile, so these books now come to a "
                               "different amount. Check the new amount, then refund."),
    "refund_race": _l("Another refund of this order was made at the same moment; what is left to refund has "
                      "changed. Open the order again."),
    "stock_no_reason": _l("Say why the stock changes (for example: shelf count, damaged copy)."),
    "stock_negative": _l("Copies on hand cannot be below zero."),
    # refunds (kiosk.admin.refunds)
    "refund_nothing_chosen": _l("Choose the books coming back, or refund a custom amount."),
    "refund_amount_unreadable": _l("Write the refund amount as a number in %(currency)s, like %(example)s."),
    # the catalog file and uploads (kiosk.core.catalog, kiosk.admin.catalog_edits)
    "catalog_unreadable": _l("Cannot read the catalog %(path)s: %(why)s. Check KIOSK_CATALOG in .env."),
    "catalog_empty": _l("The catalog %(path)s is empty. Add a header row '%(header)s' and one row per book."),
    "catalog_columns": _l("The catalog %(path)s has no column %(missing)s. Its first row must name the columns: "
                          "%(required)s (and optionally %(optional)s)."),
    "catalog_no_rows": _l("The catalog %(path)s has no valid book rows, so the kiosk cannot start. Fix the rows and "
                          "start again. %(detail)s"),
    "upload_too_large": _l("%(name)s is larger than %(mb)s MB. Split it, or remove the description column, and "
                           "upload it again."),
    "upload_not_utf8": _l("%(name)s is not UTF-8 (line %(line)s has a character it cannot read). In the "
                          "spreadsheet, save it as 'CSV UTF-8' and upload it again."),
    "upload_empty": _l("%(name)s is empty. Add a header row '%(header)s' and one row per book."),
    "covers_too_many": _l("The zip holds %(count)s files; at most %(most)s covers at a time."),
    "covers_outside": _l("The zip names %(name)s, a path outside its own folder; nothing was saved. Zip only the "
                         "cover image files themselves."),
    "covers_encrypted": _l("%(name)s is encrypted in the zip; nothing was saved. Zip the covers again without a "
                           "password."),
    "cover_too_large": _l("%(name)s is larger than %(mb)s MB; nothing was saved. Make the covers smaller (a few "
                          "hundred KB is plenty on screen)."),
    "covers_too_big": _l("The covers add up to more than %(mb)s MB unpacked; nothing was saved. Upload them in "
                         "smaller zips."),
    "covers_none": _l("The zip holds no cover images (.jpg, .png, .webp or .gif); nothing was saved."),
    "covers_sample": _l("Covers go beside your own catalog file, and the kiosk is selling the sample books: upload "
                        "your catalog CSV first (with the covers, or after it)."),
    "covers_not_zip": _l("That file is not a zip archive, or it is damaged; nothing was saved. Zip the cover images "
                         "again and try again."),
    "cover_damaged": _l("%(name)s is damaged in the zip (it does not unpack as its header says); nothing was saved. "
                        "Zip the cover images again and try again."),
    # the settings form and the settings file (kiosk.admin.configure, envfile, pin)
    "plain_text": _l("Use plain text on one line."),
    "too_long": _l("Use at most %(most)s characters."),
    "key_refused": _l("Stripe refused this secret key: it is mistyped, revoked or was rolled. Copy it from the "
                      "Stripe Dashboard, Developers > API keys."),
    "key_permission": _l("Stripe says this key lacks permission for what the kiosk does. Use the standard secret "
                         "key (sk_), or a restricted key (rk_) with write access to PaymentIntents, Refunds and "
                         "Terminal. Copy it from the Stripe Dashboard, Developers > API keys."),
    "key_unchecked": _l("Could not reach Stripe to check the key, so nothing was saved. Check this computer's "
                        "internet connection and save again."),
    "key_not_checked": _l("Stripe would not check this key (HTTP %(status)s), so nothing was saved. Copy it from the "
                          "Stripe Dashboard, Developers > API keys."),
    "live_needs_window": _l("Live keys need the kiosk's window: this kiosk is served without it (headless, plain "
                            "HTTP), where Stripe.js refuses live keys. Use test keys here, or set the kiosk up from "
                            "its own window."),
    "live_api_base": _l("This kiosk sends Stripe calls to %(base)s (STRIPE_API_BASE), and a live key goes only to "
                        "Stripe. Remove STRIPE_API_BASE first."),
    "key_paste": _l("Paste the key here. Copy it from the Stripe Dashboard, Developers > API keys."),
    "key_problem": _l("This key %(problem)s"),
    "pins_differ": _l("The two PINs differ. Type the same PIN twice."),
    "pin_digits": lambda p: ngettext("Use digits only, at least %(num)s of them.",
                                     "Use digits only, at least %(num)s of them.", p.pop("num"), **p),
    "pin_short": lambda p: ngettext("Use at least %(num)s digit.", "Use at least %(num)s digits.", p.pop("num"), **p),
    "pin_long": lambda p: ngettext("Use at most %(num)s digit.", "Use at most %(num)s digits.", p.pop("num"), **p),
    "pin_guessable": _l("Choose a PIN that is harder to guess than a repeated digit or a run like 123456."),
    "shop_name_missing": _l("Give the shop a name; it is shown at the top of every page."),
    "currency_unknown": _l("Choose a three-letter currency code such as usd, eur, gbp or jpy."),
    "locale_unknown": _l("Choose a language and country code such as en_US, en_GB, fr_FR or ja_JP."),
    "currency_elsewhere": _l("Prices will be in %(currency)s, while %(country)s uses %(home)s: check that your "
                             "catalog's prices are in %(currency)s."),
    "timezone_unknown": _l("Choose the shop's time zone from the list, such as America/New_York."),
    "idle_seconds": _l("Use a whole number of seconds from 10 to 3600."),
    "staff_discount_max": _l("Use a whole percent from 0 (no staff discounts) to 100."),
    "tax_rates": _l("%(problem)s. Give each tax class a name (letters, like standard) and a percent from 0 to 100, "
                    "like 8.875; remove the rows you do not need (none: no tax)."),
    "tax_rate_part": _l("%(part)s is not a tax class and a percent from 0 to 100 with at most four decimals, like "
                        "standard:8.875"),
    "tax_class_twice": _l("the class %(name)s is given twice"),
    "address_bar": _l("Write each line of the address in its own box, without |."),
    "catalog_refused_rows": lambda p: ngettext("%(num)s of %(total)s book would not be on sale: %(refused)s",
                                               "%(num)s of %(total)s books would not be on sale: %(refused)s",
                                               p.pop("num"), **p),
    "set_in_environment": _l("%(setting)s is set in the kiosk's environment, which wins over the settings file: "
                             "remove it there, then change it here."),
    "catalog_unsaved": _l("Could not save the catalog in %(folder)s: %(why)s. Nothing was changed. Let the kiosk's "
                          "user write that folder, then save again."),
    "settings_fatal": _l("These settings would stop the kiosk from starting, so they were not kept: %(problem)s"),
    "settings_unsaved": _l("Could not save the settings to %(path)s: %(why)s. Nothing was changed. Let the kiosk's "
                           "user write that folder (or set KIOSK_ENV_FILE to a file it may write), then save again."),
    "stale_revision": _l("Someone else saved the settings while this form was open. Nothing was saved: the form now "
                         "shows what they saved; make your change again."),
}

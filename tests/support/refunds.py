"""Staff refunds as the screens make them: the order page's choice, the review page, and the confirm form it holds."""
import re
from urllib.parse import urlencode

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def review_url(reference, returned=None, amount=None):
    """The review page for returning `returned` ({isbn: copies}) by the book, or for a custom `amount` (text)."""
    query = {f"return-{isbn}": n for isbn, n in (returned or {}).items()}
    query["mode"] = "books" if amount is None else "custom"
    if amount is not None:
        query["amount"] = amount
    return f"/staff/orders/{reference}/refund?{urlencode(query)}"


def confirm_form(review_page):
    """The hidden fields of the review page's confirm form (request key, mode, copies, the amount shown), which
    pressing its Refund button posts; raises when the page holds no such form."""
    form = review_page.split('class="refund-confirm"', 1)[1].split("</form>", 1)[0]
    fields = dict(_HIDDEN.findall(form))
    assert re.fullmatch(r"[0-9a-f]{32}", fields["request"]), form
    return fields

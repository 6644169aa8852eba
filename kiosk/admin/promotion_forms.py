"""Promotions as staff set them up: the staff form and the promotions CSV read into the values the ledger keeps
(kiosk.ledger.promotions.FIELDS), those values written back as the form's fields and the CSV's cells, and a
promotion said in a line for the list.

The form and the CSV share their names (COLUMNS): money in major units as staff type it ("2.50", "500" for JPY),
times in the shop's time zone ("2026-12-07T09:00" from the form's date-time picker, "2026-12-07 09:00" or a date
alone in a spreadsheet), the ledger in minor units and UTC. A date alone starts at that day's first moment; as an
end it means the end of that day (the next day's midnight, as the ledger's ends are exclusive)."""
import csv
import io
import re
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from itertools import zip_longest

from kiosk.core import isbn as isbnlib
from kiosk.core.coded import Coded
from kiosk.core.i18n import gettext as _
from kiosk.core.i18n import ngettext
from kiosk.core.money import exponent, to_minor
from kiosk.core.pricing import KINDS, SCOPES, normalize_code
from kiosk.core.stamps import STAMP, major, parse_stamp

COLUMNS = ("name", "kind", "scope", "percent", "amount", "buy", "free", "category", "isbns", "min_spend", "starts",
           "ends", "code", "max_uses")
REQUIRED = ("name", "kind", "scope")
MAX_NAME, MAX_CATEGORY, MAX_ISBNS = 80, 80, 1000
MAX_ROWS = 500
MAX_FILE = 1024 * 1024
MOST_BUY, MOST_USES = 20, 1_000_000
PERCENT = re.compile(r"[0-9]{1,3}(?:\.[0-9]*)?|\.[0-9]+")
MONEY = re.compile(r"[0-9]{1,12}(?:\.[0-9]*)?|\.[0-9]+")
WHOLE = re.compile(r"[0-9]{1,7}")
# Commas, semicolons, spaces, new lines, bars or slashes between ISBNs; hyphens inside one are its own.
ISBN_SEPARATORS = re.compile(r"[\s,;|/]+")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Forms of a moment staff may write, the form's picker first; a date alone is a whole day.
MOMENTS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")
DAY = "%Y-%m-%d"
FIRST_YEAR, LAST_YEAR = 2000, 2099
# export.safe_cell (web) quotes a cell that a spreadsheet would read as a formula; read back, the quote goes.
EXPORT_QUOTE = re.compile(r"(^|[,;]\s*)'(?=[=+\-@\t\r])")


class PromotionFormError(Coded):
    """What is wrong with one field of a promotion's form (or one cell of its CSV row), or with a CSV file."""


class PromotionRowsError(PromotionFormError):
    """Rows of a promotions CSV that cannot be saved, each problem with its line and column: nothing was saved."""

    def __init__(self, problems):
        super().__init__("promotion_csv_rows", "%(num)s problems in the promotions file; nothing was saved.",
                         num=len(problems))
        self.problems = problems  # [(line, column, PromotionFormError)]


def blank():
    """The fields of the form for a new promotion: percent off the whole cart."""
    return {**dict.fromkeys(COLUMNS, ""), "kind": "percent", "scope": "cart"}


def _name(text):
    if not text:
        raise PromotionFormError("promotion_name_missing", "Give the promotion a name; customers see it on their "
                                 "cart and receipt.")
    if CONTROL.search(text):
        raise PromotionFormError("plain_text", "Use plain text on one line.")
    if len(text) > MAX_NAME:
        raise PromotionFormError("too_long", "Use at most %(most)s characters.", most=MAX_NAME)
    return text


def _kind(text):
    if text.lower() not in KINDS:
        raise PromotionFormError("promotion_kind", "Choose what the promotion does: a percent off, an amount off, "
                                 "or buy some and get the cheapest free (percent, amount or bundle).")
    return text.lower()


def _scope(text):
    if text.lower() not in SCOPES:
        raise PromotionFormError("promotion_scope", "Choose which books it is for: the whole cart, a category or "
                                 "listed books (cart, category or books).")
    return text.lower()


def _percent(text):
    try:
        value = Decimal(text).normalize() if PERCENT.fullmatch(text) else None
    except InvalidOperation:
        value = None
    if value is None or not 0 < value <= 100 or value.as_tuple().exponent < -2:
        raise PromotionFormError("promotion_percent", "Write the percent off as a number above 0 and at most 100, "
                                 "with at most two decimals, like 10 or 12.5.")
    return format(value, "f")


def _minor(text, currency):
    """Minor units of an amount typed in major units, or None when it is not one."""
    if not MONEY.fullmatch(text):
        return None
    try:
        return to_minor(text, currency)
    except ValueError:
        return None


def _example(currency):
    """An amount as staff would write it in `currency`: 2.50, or 500 for a currency without decimals."""
    digits = exponent(currency)
    return major(5 * 10 ** digits // 2 if digits else 500, currency)


def _amount(text, currency):
    value = _minor(text, currency)
    if not value:
        raise PromotionFormError("promotion_amount", "Write the amount off in %(currency)s, above zero, like "
                                 "%(example)s.", currency=currency.upper(), example=_example(currency))
    return value


def _min_spend(text, currency):
    value = _minor(text, currency) if text else 0
    if value is None:
        raise PromotionFormError("promotion_min_spend", "Write the least the cart must come to in %(currency)s, "
                                 "like %(example)s, or leave it empty.", currency=currency.upper(),
                                 example=_example(currency))
    return value


def _whole(text, low, high):
    """A whole number from low to high typed in ASCII digits, or None."""
    value = int(text) if WHOLE.fullmatch(text) else None
    return value if value is not None and low <= value <= high else None


def _buy(text):
    value = _whole(text, 2, MOST_BUY)
    if value is None:
        raise PromotionFormError("promotion_buy", "Write how many books to buy as a whole number from 2 to "
                                 "%(most)s.", most=MOST_BUY)
    return value


def _free(text, buy):
    most = (buy or MOST_BUY) - 1
    value = _whole(text, 1, most)
    if value is None:
        raise PromotionFormError("promotion_free", "Write how many of them are free as a whole number from 1 to "
                                 "%(most)s (fewer than the books bought).", most=most)
    return value


def _category(text, categories):
    if not text:
        raise PromotionFormError("promotion_category_missing", "Choose the category the promotion is for.")
    if len(text) > MAX_CATEGORY or CONTROL.search(text):
        raise PromotionFormError("too_long", "Use at most %(most)s characters.", most=MAX_CATEGORY)
    # Kept as the catalog spells it; a category the catalog does not have would never apply: a typo.
    found = {c.casefold(): c for c in categories}.get(text.casefold())
    if found is None and not categories:
        raise PromotionFormError("promotion_no_categories", "The catalog's books have no categories yet: give them "
                                 "a category in the catalog first, or list the books by ISBN.")
    if found is None:
        raise PromotionFormError("promotion_category_unknown", "The catalog has no category %(category)s. Its "
                                 "categories: %(known)s.", category=text, known=", ".join(categories))
    return found


def _isbns(text):
    found = {}
    for raw in filter(None, ISBN_SEPARATORS.split(text)):
        code = isbnlib.normalize(raw)
        if not code or not isbnlib.is_valid(code):
            raise PromotionFormError("promotion_isbn", "%(isbn)s is not an ISBN (10 or 13 digits with a right check "
                                     "digit); check it against the book's barcode.", isbn=raw[:20])
        found.setdefault(isbnlib.to_isbn13(code), None)
    if not found:
        raise PromotionFormError("promotion_isbns_missing", "List the books' ISBNs, scanned or typed, separated by "
                                 "commas or spaces.")
    if len(found) > MAX_ISBNS:
        raise PromotionFormError("promotion_isbns_many", "List at most %(most)s books; for more, give them a "
                                 "category.", most=MAX_ISBNS)
    return ",".join(found)


def _moment(text, zone, end):
    """A ledger stamp (UTC) for a moment typed in the shop's zone, None for nothing typed; ValueError when bad."""
    if not text:
        return None
    for shape in MOMENTS:
        try:
            moment = datetime.strptime(text, shape)
            break
        except ValueError:
            continue
    else:
        moment = datetime.combine(datetime.strptime(text, DAY).date() + timedelta(days=1 if end else 0), time())
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise ValueError(text)
    # A time the clocks skip (a DST gap) reads with the offset before the change, as the shop's days do.
    return moment.replace(tzinfo=zone).astimezone(UTC).strftime(STAMP)


def _when(text, zone, end):
    try:
        return _moment(text, zone, end)
    except ValueError:
        raise PromotionFormError("promotion_time", "Write the date and time like 2026-12-07 09:00 (a date alone is "
                                 "the whole day), or leave it empty.") from None


def _code(text):
    code = normalize_code(text) if text else None
    if code == "":
        raise PromotionFormError("promotion_code", "A code is 3 to 32 letters (A to Z), digits or hyphens, like "
                                 "FAIR10; or leave it empty for a promotion everyone gets.")
    return code


def _max_uses(text):
    value = _whole(text, 1, MOST_USES) if text else None
    if text and value is None:
        raise PromotionFormError("promotion_max_uses", "Write the most uses as a whole number from 1 to %(most)s, "
                                 "or leave it empty for no limit.", most=MOST_USES)
    return value


def _read(problems, column, parse, *args):
    """parse(*args), or None with its problem kept under `column`."""
    try:
        return parse(*args)
    except PromotionFormError as exc:
        problems.setdefault(column, exc)
        return None


def check(fields, currency, zone, categories=()):
    """(values for promotions.save, {}) from a staff form or a CSV row (strings under COLUMNS), or (None,
    {column: PromotionFormError}) naming each problem; only the fields its kind and scope use are read."""
    text = {name: str(fields.get(name) or "").strip() for name in COLUMNS}
    problems = {}
    values = {"name": _read(problems, "name", _name, text["name"]),
              "kind": _read(problems, "kind", _kind, text["kind"]),
              "scope": _read(problems, "scope", _scope, text["scope"]), "percent": "0", "amount": 0, "buy": 0,
              "free": 0, "category": "", "isbns": "", "currency": currency.upper(), "enabled": 1}
    if values["kind"] == "percent":
        values["percent"] = _read(problems, "percent", _percent, text["percent"])
    elif values["kind"] == "amount":
        values["amount"] = _read(problems, "amount", _amount, text["amount"], currency)
    elif values["kind"] == "bundle":
        values["buy"] = _read(problems, "buy", _buy, text["buy"])
        values["free"] = _read(problems, "free", _free, text["free"], values["buy"])
    if values["scope"] == "category":
        values["category"] = _read(problems, "category", _category, text["category"], categories)
    elif values["scope"] == "books":
        values["isbns"] = _read(problems, "isbns", _isbns, text["isbns"])
    values["min_spend"] = _read(problems, "min_spend", _min_spend, text["min_spend"], currency)
    values["starts_at"] = _read(problems, "starts", _when, text["starts"], zone, False)
    values["ends_at"] = _read(problems, "ends", _when, text["ends"], zone, True)
    if values["starts_at"] and values["ends_at"] and values["ends_at"] <= values["starts_at"]:
        problems["ends"] = PromotionFormError("promotion_ends_first", "The end must come after the start.")
    values["code"] = _read(problems, "code", _code, text["code"])
    values["max_uses"] = _read(problems, "max_uses", _max_uses, text["max_uses"])
    if values["max_uses"] and not text["code"]:
        problems.setdefault("max_uses", PromotionFormError(
            "promotion_max_uses_code", "A limit of uses needs a code: give the promotion a code, or leave the limit "
            "empty."))
    return (None, problems) if problems else (values, {})


def _local(stamp, zone, shape):
    moment = parse_stamp(stamp)
    return moment.astimezone(zone).strftime(shape) if moment else ""


def _fields(row, zone, shape):
    currency = row["currency"]
    return {"name": row["name"], "kind": row["kind"], "scope": row["scope"],
            "percent": row["percent"] if row["kind"] == "percent" else "",
            "amount": major(row["amount"], currency) if row["kind"] == "amount" else "",
            "buy": str(row["buy"]) if row["kind"] == "bundle" else "",
            "free": str(row["free"]) if row["kind"] == "bundle" else "",
            "category": row["category"] if row["scope"] == "category" else "",
            "isbns": ", ".join(filter(None, row["isbns"].split(","))) if row["scope"] == "books" else "",
            "min_spend": major(row["min_spend"], currency) if row["min_spend"] else "",
            "starts": _local(row["starts_at"], zone, shape), "ends": _local(row["ends_at"], zone, shape),
            "code": row["code"] or "", "max_uses": "" if row["max_uses"] is None else str(row["max_uses"])}


def form_fields(row, zone):
    """A ledger promotion as its edit form's fields (times for the date-time picker, in the shop's zone)."""
    return _fields(row, zone, "%Y-%m-%dT%H:%M")


def csv_rows(rows, zone):
    """Every promotion as the CSV's rows (lists of cells), the header first: what read_csv takes back."""
    yield list(COLUMNS)
    for row in rows:
        cells = _fields(row, zone, "%Y-%m-%d %H:%M")
        yield [cells[name] for name in COLUMNS]


def _decoded(data):
    """The text of an uploaded CSV, refused when too big, not text, or not UTF-8."""
    if len(data) > MAX_FILE:
        raise PromotionFormError("promotion_csv_too_large", "The promotions file is larger than %(mb)s MB; it holds "
                                 "at most %(most)s promotions.", mb=MAX_FILE // (1024 * 1024), most=MAX_ROWS)
    if b"\x00" in data:
        raise csv.Error("a NUL byte: not text")  # a workbook or an image, before it reads as text that is not UTF-8
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PromotionFormError("promotion_csv_not_utf8", "The promotions file is not UTF-8 (line %(line)s has a "
                                 "character it cannot read). In the spreadsheet, save it as 'CSV UTF-8'.",
                                 line=data[:exc.start].count(b"\n") + 1) from None


def _header(reader):
    header = [h.strip().lower() for h in next(reader, [])]
    if not any(header):
        raise PromotionFormError("promotion_csv_empty", "The promotions file is empty. Its first row names the "
                                 "columns: %(columns)s.", columns=",".join(COLUMNS))
    named = [h for h in header if h]  # a spreadsheet may save empty columns after the last one
    if set(named) - set(COLUMNS) or set(REQUIRED) - set(named) or len(set(named)) < len(named):
        raise PromotionFormError("promotion_csv_columns", "The promotions file's first row must name its columns, "
                                 "each once, from %(columns)s (name, kind and scope are needed); it has %(header)s.",
                                 columns=",".join(COLUMNS), header=",".join(named)[:300])
    return header


def _rows(text):
    """(line, {column: cell}) of each row that is not blank, and the problems of rows shaped wrong."""
    first = text.partition("\n")[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";" if first.count(";") > first.count(",") else ",")
    header = _header(reader)
    found, problems = [], []
    for cells in reader:
        line = reader.line_num - sum(c.count("\n") for c in cells)  # where the row starts, when a cell has lines
        if not any(c.strip() for c in cells):
            continue  # blank lines are what spreadsheets leave at the end
        if any(c.strip() for h, c in zip_longest(header, cells, fillvalue="") if not h):
            problems.append((line, "", PromotionFormError("promotion_csv_cells", "This row has more cells than the "
                                                          "first row has columns: check for an unquoted comma.")))
        found.append((line, {h: EXPORT_QUOTE.sub(r"\1", c) for h, c in zip(header, cells, strict=False) if h}))
        if len(found) > MAX_ROWS:
            raise PromotionFormError("promotion_csv_too_many", "The promotions file has more than %(most)s rows; "
                                     "split it.", most=MAX_ROWS)
    return found, problems


def _read_rows(data):
    """The rows of an uploaded promotions CSV; PromotionFormError for a file that is not one."""
    try:
        return _rows(_decoded(data))
    except csv.Error:  # a NUL byte, or a runaway quoted cell larger than csv's field limit
        raise PromotionFormError("promotion_csv_not_csv", "That file is not a CSV file (it looks like a spreadsheet "
                                 "or another binary file). In the spreadsheet, save it as 'CSV UTF-8'.") from None


def read_csv(data, currency, zone, categories=(), existing=()):
    """The values of every row of a promotions CSV (bytes), checked together against each other and the ledger's
    promotions (`existing` rows): PromotionFormError for a file that cannot be read, PromotionRowsError with every
    problem's line and column when any row is wrong. A promotion already in the ledger (by name) stays switched
    on or off as it is."""
    found, problems = _read_rows(data)
    if not found:
        raise PromotionFormError("promotion_csv_no_rows", "The promotions file has no rows under its first row.")
    by_name = {row["name"]: row for row in existing}
    names, codes, rows = {}, {}, []
    # The codes the ledger has now, and whose they are.
    kept = {row["code"]: row["name"] for row in existing if row["code"]}
    for line, cells in found:
        values, wrong = check(cells, currency, zone, categories)
        problems += [(line, column, problem) for column, problem in wrong.items()]
        if values is None:
            continue
        name = values["name"]
        if name in names:
            problems.append((line, "name", PromotionFormError("promotion_csv_name_twice", "Line %(first)s has a "
                                                              "promotion of this name already.", first=names[name])))
        names.setdefault(name, line)
        if name in by_name:
            values["enabled"] = by_name[name]["enabled"]
        if values["code"]:
            codes.setdefault(values["code"], []).append(line)
        rows.append(values)
    for code, lines in codes.items():
        # One row may have a code that is nobody's, or that of a promotion this file changes; never another's.
        free = kept.get(code) is None or kept[code] in names
        for line in lines[1:] if free else lines:
            problems.append((line, "code", PromotionFormError("promotion_code_taken", "Another promotion has that "
                                                              "code already.")))
    if problems:
        raise PromotionRowsError(sorted(problems, key=lambda p: (p[0], COLUMNS.index(p[1]) if p[1] else -1)))
    return rows


def what(row, money):
    """What a promotion does, in a line: "10% off the whole cart", "Buy 3, the cheapest 1 free: Paperbacks";
    `money` formats minor units (the page's money filter)."""
    if row["scope"] == "category":
        books = row["category"]
    elif row["scope"] == "books":
        count = len(list(filter(None, row["isbns"].split(","))))
        books = ngettext("%(num)s listed book", "%(num)s listed books", count)
    else:
        books = _("any books")
    if row["kind"] == "bundle":
        deal = ngettext("Buy %(buy)s, the cheapest %(num)s free: %(books)s",
                        "Buy %(buy)s, the cheapest %(num)s free: %(books)s", row["free"], buy=row["buy"], books=books)
    elif row["scope"] == "cart":
        off = _("%(percent)s%%", percent=row["percent"]) if row["kind"] == "percent" else money(row["amount"])
        deal = _("%(off)s off the whole cart", off=off)
    elif row["kind"] == "percent":
        deal = _("%(percent)s%% off each book: %(books)s", percent=row["percent"], books=books)
    else:
        deal = _("%(amount)s off each book: %(books)s", amount=money(row["amount"]), books=books)
    if row["min_spend"]:
        return _("%(deal)s, on carts of %(amount)s or more", deal=deal, amount=money(row["min_spend"]))
    return deal


def when(row, zone):
    """When a promotion runs, in the shop's time zone: "from 2026-12-07 09:00 to 2026-12-24 18:00", "any time"."""
    starts, ends = (_local(row[name], zone, "%Y-%m-%d %H:%M") for name in ("starts_at", "ends_at"))
    if starts and ends:
        return _("from %(starts)s to %(ends)s", starts=starts, ends=ends)
    if starts:
        return _("from %(starts)s", starts=starts)
    return _("until %(ends)s", ends=ends) if ends else _("any time")


def describe(row, money, zone):
    """A promotion in a line: what it does, and when it runs if it does not always."""
    if not (row["starts_at"] or row["ends_at"]):
        return what(row, money)
    return _("%(what)s, %(when)s", what=what(row, money), when=when(row, zone))


def state(row, at):
    """Where a promotion stands at ledger time `at`: "off", "later", "ended", "used_up" or "running"."""
    if not row["enabled"]:
        return "off"
    if row["starts_at"] and row["starts_at"] > at:
        return "later"
    if row["ends_at"] and row["ends_at"] <= at:
        return "ended"
    if row["max_uses"] is not None and row["uses"] >= row["max_uses"]:
        return "used_up"
    return "running"

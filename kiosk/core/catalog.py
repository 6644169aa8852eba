"""The book catalog: a CSV that staff edit in a spreadsheet, validated row by row, with a search index."""
import csv
import heapq
import re
import threading
import unicodedata
from array import array
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial
from itertools import chain, groupby
from operator import itemgetter
from pathlib import Path

from kiosk.core import isbn as isbnlib
from kiosk.core.coded import Coded
from kiosk.core.money import exponent, to_minor

REQUIRED = ("isbn", "title", "author", "price", "stock")
OPTIONAL = ("cover", "description", "category", "tax")
MAX_TEXT = {"title": 300, "author": 200, "description": 4000, "category": 80, "cover": 500}
_WORD = re.compile(r"\w+")


class CatalogError(Coded):
    """The catalog cannot be used at all: its code and params say why and what to do (words.say)."""


@dataclass(frozen=True, slots=True)
class Book:
    """One sellable title; price is in integer minor units of the shop currency."""

    isbn: str
    isbn13: str
    title: str
    author: str
    price: int
    stock: int
    cover: str = ""
    description: str = ""
    category: str = ""
    tax_class: str = "standard"


@dataclass(frozen=True)
class CatalogWarning:
    """A skipped row or cell: file, line and column, so staff can find it in the spreadsheet."""

    file: str
    line: int
    column: str
    message: str

    def __str__(self):
        # Line 0: not a row of a file (a book edited on the staff screen).
        where = self.file + (f", line {self.line}" if self.line else "") + (f", column {self.column}" if self.column
                                                                            else "")
        return f"{where}: {self.message}"


def fold(text):
    """Lower-case text without accents, so 'Émile' is found by 'emile'."""
    if text.isascii():
        return text.casefold()  # the common case, and NFKD leaves ASCII as it is
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class _Index:
    """Prefix search over folded title and author words and the ISBNs.

    Built once, on the first search: the home page never needs it, so start-up does not wait for it.
    Positions index the title-ordered book list, so the first matches in a posting list are the first
    results; posting lists are compact arrays (4 bytes a position instead of a 36-byte int object).
    """

    def __init__(self, books):
        # Positions go straight into arrays: lists of int objects here cost 36 bytes a position and,
        # freed after the build, left the process about 25 MB larger for good at 100k titles.
        postings, codes, code_positions = defaultdict(partial(array, "i")), [], array("i")
        for pos, book in enumerate(books):
            for word in set(_WORD.findall(fold(f"{book.title} {book.author}"))):
                postings[word].append(pos)
            codes.append(book.isbn13)
            code_positions.append(pos)
            if book.isbn != book.isbn13:
                codes.append(book.isbn.lower())
                code_positions.append(pos)
        self.size = len(books)
        self.terms = sorted(postings)
        self.postings = [postings[t] for t in self.terms]
        order = sorted(range(len(codes)), key=codes.__getitem__)
        self.codes = [codes[i] for i in order]
        self.code_positions = array("i", (code_positions[i] for i in order))
        self._letters = {}

    def span(self, word):
        """How many positions match `word` as a word or ISBN prefix, and where they are listed."""
        lo = bisect_left(self.terms, word)
        hi = bisect_left(self.terms, word + "\U0010ffff", lo)
        code_lo = code_hi = 0
        if word[:1].isdigit():
            code_lo = bisect_left(self.codes, word)
            code_hi = bisect_left(self.codes, word + "\U0010ffff", code_lo)
        return sum(map(len, self.postings[lo:hi])) + code_hi - code_lo, (lo, hi, code_lo, code_hi)

    def candidates(self, word, where):
        """Positions in title order, each once, and whether they all match `word` (else check each)."""
        lo, hi, code_lo, code_hi = where
        if code_hi - code_lo > self.size // 16:
            # The start of an ISBN: ISBNs do not follow titles, so walking every book fills a page fast.
            return range(self.size), False
        found = [self._word_positions(word, lo, hi)]
        if code_hi > code_lo:
            found.append(sorted(self.code_positions[code_lo:code_hi]))
        return (found[0] if len(found) == 1 else (p for p, _ in groupby(heapq.merge(*found)))), True

    def position_set(self, where):
        """The set of positions that match a word, from its span."""
        lo, hi, code_lo, code_hi = where
        return set().union(*self.postings[lo:hi], self.code_positions[code_lo:code_hi])

    def _word_positions(self, word, lo, hi):
        if hi - lo == 1:
            return self.postings[lo]
        if len(word) == 1:
            # A first letter spans thousands of words in a real catalog: merge them once and keep that.
            merged = self._letters.get(word)
            if merged is None:
                merged = array("i", sorted(set(chain.from_iterable(self.postings[lo:hi]))))
                self._letters[word] = merged
            return merged
        # A book lists a word once, but may hold two words with the same prefix.
        return (p for p, _ in groupby(heapq.merge(*self.postings[lo:hi])))


class _Words:
    """`check(book)`: does every word start a folded title or author word, or the ISBN-13 or ISBN-10?"""

    def __init__(self, words):
        self.words = [(w, re.compile(r"(?<!\w)" + re.escape(w))) for w in words]

    def __call__(self, book):
        text = None
        for word, starts_a_word in self.words:
            if book.isbn13.startswith(word) or book.isbn.lower().startswith(word):
                continue
            if text is None:
                text = fold(f"{book.title} {book.author}")
            if not starts_a_word.search(text):
                return False
        return True


@dataclass
class Catalog:
    """The valid books, the warnings from loading them, and a prefix index over title, author and ISBN."""

    path: Path
    currency: str
    books: list
    warnings: list = field(default_factory=list)
    skipped: int = 0
    hidden: set = field(default_factory=set)  # ISBN-13s hidden on the staff screen (not on sale)
    edited: set = field(default_factory=set)  # ISBN-13s whose book comes from the staff screen, not the file

    def __post_init__(self):
        self.books.sort(key=lambda b: (fold(b.title), b.isbn13))
        self._by_isbn = {}
        for book in self.books:
            self._by_isbn[book.isbn13] = book
            self._by_isbn[book.isbn] = book
        self._categories = sorted({b.category for b in self.books if b.category}, key=fold)
        self._category_set = frozenset(self._categories)
        self._in_category = {}
        self._index = None
        self._index_lock = threading.Lock()

    def get(self, code):
        """The book for an ISBN-10 or ISBN-13 in any spelling, or None."""
        return self._by_isbn.get(isbnlib.normalize(code))

    @property
    def categories(self):
        """The distinct categories, sorted."""
        return self._categories

    def _built_index(self):
        with self._index_lock:  # concurrent first searches build it once
            if self._index is None:
                self._index = _Index(self.books)
        return self._index

    def search(self, query, limit=48, category=""):
        """Books whose title or author words, or ISBN, start with every word of the query, in title order."""
        index = self._index or self._built_index()
        digits = re.sub(r"[\s-]", "", query)
        # A query shaped like an ISBN is one word, however it is hyphenated.
        words = {digits.lower()} if re.fullmatch(r"\d{4,12}[\dXx]?", digits) else set(_WORD.findall(fold(query)))
        if not words:
            return self.page(1, size=limit, category=category)[0]
        # Walk the rarest word's candidates in title order. Another word that is rare too is checked
        # against the set of its positions; a common one against each book's text (it matches often,
        # so the page fills after few checks).
        spans = sorted((index.span(word), word) for word in words)
        (total, where), rarest = spans[0]
        candidates, exact = index.candidates(rarest, where) if total else ((), True)
        sets, texts = [], []
        for (count, at), word in spans[1:] if exact else spans:
            if count <= index.size // 4:
                sets.append(index.position_set(at))
            else:
                texts.append(word)
        check = _Words(texts)
        books, found = self.books, []
        for pos in candidates:
            book = books[pos]
            if all(pos in have for have in sets) and (not category or book.category == category) \
                    and check(book):
                found.append(book)
                if len(found) == limit:
                    break
        return found

    def _books_in(self, category):
        books = self._in_category.get(category)
        if books is None:
            if category not in self._category_set:
                return []  # any text can arrive in ?category=: only real categories are kept
            books = self._in_category[category] = [b for b in self.books if b.category == category]
        return books

    def page(self, number, size=24, category=""):
        """One page of the catalog in title order, and the number of pages."""
        books = self._books_in(category) if category else self.books
        pages = max(1, -(-len(books) // size))
        number = min(max(1, number), pages)
        return books[(number - 1) * size:number * size], pages


# Spreadsheets on Windows often save "CSV" in the legacy code page.
LEGACY_NOTE = "the file is not UTF-8; read it as Windows-1252. " \
    "Save it as 'CSV UTF-8' to be sure accents come out right."


_PLAIN_PRICE = re.compile(r"([0-9]{1,12})(?:\.([0-9]*))?")
_STOCK = re.compile(r"\d{1,7}")
_URL_LIKE = re.compile(r"^[a-z]+:", re.I)


def _price(raw, currency, digits):
    """Minor units of a price; plain "12.50" is parsed directly, anything else by money.to_minor."""
    plain = _PLAIN_PRICE.fullmatch(raw)
    if plain and len(plain[2] or "") <= digits:
        return int(plain[1] + (plain[2] or "").ljust(digits, "0"))
    return to_minor(raw, currency)


def _parse_row(cells, pick, currency, digits, shared, warn, tax_classes):
    """A Book from one row's cells, or None after warning about the first thing wrong with it.

    `pick(cells)` gives the cells of REQUIRED + OPTIONAL in that order; a column the file does not have
    is read from an empty cell added at the row's end.
    """
    isbn_raw, title, author, price_raw, stock_raw, cover, description, category, tax_class = pick(cells)
    # A plain 13-digit code is already normalized; anything else goes through isbn.normalize.
    code = isbn_raw if len(isbn_raw) == 13 and isbn_raw.isascii() and isbn_raw.isdigit() \
        else isbnlib.normalize(isbn_raw)
    if not code:
        return warn("isbn", f"{isbn_raw!r} is not an ISBN-10 or ISBN-13.")
    if not isbnlib.is_valid(code):
        return warn("isbn", f"{isbn_raw!r} has a wrong check digit; check it against the book's barcode.")
    if not title:
        return warn("title", "the title is empty.")
    if not author:
        return warn("author", "the author is empty.")
    try:
        price = _price(price_raw, currency, digits)
    except ValueError as exc:
        example = "1500" if digits == 0 else "23." + "0" * digits
        return warn("price", f"{exc}. Write the price in {currency} like {example}, without a currency sign.")
    if not _STOCK.fullmatch(stock_raw):
        return warn("stock", f"{stock_raw!r} is not a whole number of copies (0 or more).")
    tax_class = tax_class.lower() or "standard"
    if tax_classes and tax_class not in tax_classes:
        return warn("tax", f"{tax_class!r} is not a tax class in KIOSK_TAX_RATES ({', '.join(sorted(tax_classes))}); "
                           "add it there or use one of those.")
    texts = (("title", title), ("author", author), ("cover", cover), ("description", description),
             ("category", category))
    for name, value in texts:
        if len(value) > MAX_TEXT[name]:
            return warn(name, f"the {name} is longer than {MAX_TEXT[name]} characters.")
    if cover and (_URL_LIKE.match(cover) or ".." in cover or cover.startswith("/")):
        # Covers are files beside the catalog; the kiosk never fetches from the network.
        warn("cover", f"{cover!r} must be a file name in the catalog's covers folder, not a URL or path; "
                      "the book is listed without a cover.")
        cover = ""
    # Categories, cover files and prices repeat across thousands of rows: keep one copy of each.
    return Book(isbn=code, isbn13=isbnlib.to_isbn13(code), title=title, author=author,
                price=shared.setdefault(price, price), stock=int(stock_raw), cover=shared.setdefault(cover, cover),
                description=description, category=shared.setdefault(category, category),
                tax_class=shared.setdefault(tax_class, tax_class))


def load_catalog(path, currency, tax_classes=()):
    """Load and validate a catalog CSV; bad rows are skipped with a warning, no valid row is a CatalogError."""
    path = Path(path)
    try:
        try:
            return _load(path, currency, "utf-8-sig", None, tax_classes)
        except UnicodeDecodeError:
            return _load(path, currency, "cp1252", LEGACY_NOTE, tax_classes)
    except OSError as exc:
        raise CatalogError("catalog_unreadable", "Cannot read the catalog %(path)s: %(why)s. Check KIOSK_CATALOG in "
                           ".env.", path=str(path), why=exc.strerror) from None


def _load(path, currency, encoding, encoding_note, tax_classes):
    # Rows are read as a stream, not as one string and a list of lines: for 100k titles those two
    # held about 60 MB at once, and the process kept that memory after loading.
    with open(path, encoding=encoding, errors="replace" if encoding_note else "strict", newline="") as f:
        first = f.readline()
        if not first:
            raise CatalogError("catalog_empty", "The catalog %(path)s is empty. Add a header row '%(header)s' and one "
                               "row per book.", path=str(path), header=",".join(REQUIRED))
        delimiter = ";" if first.count(";") > first.count(",") else ","
        return _parse(path, csv.reader(chain([first], f), delimiter=delimiter), currency, encoding_note, tax_classes)


def _parse(path, reader, currency, encoding_note, tax_classes):
    name = path.name
    header = [h.strip().lower() for h in next(reader, [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise CatalogError("catalog_columns", "The catalog %(path)s has no column %(missing)s. Its first row must name "
                           "the columns: %(required)s (and optionally %(optional)s).", path=str(path),
                           missing=", ".join(missing), required=",".join(REQUIRED), optional=",".join(OPTIONAL))
    columns = {h: i for i, h in enumerate(header)}  # a repeated column name: the last one counts
    width = len(header)
    pick = itemgetter(*(columns.get(name, -1) for name in REQUIRED + OPTIONAL))
    digits = exponent(currency)
    warnings = []
    if encoding_note:
        warnings.append(CatalogWarning(name, 1, "", encoding_note))
    books, seen, shared, skipped = [], {}, {}, 0
    for cells in reader:
        line = reader.line_num

        def warn(column, message, line=line):
            warnings.append(CatalogWarning(name, line, column, message))

        cells = [c.strip() for c in cells]
        if not any(cells[:width]):
            continue  # blank lines are what spreadsheets leave at the end
        if len(cells) > width:
            warn("", "the row has more cells than the header; check for an unquoted comma.")
        elif len(cells) < width:
            cells += [""] * (width - len(cells))
        cells.append("")  # what a column the file does not have reads as (index -1)
        book = _parse_row(cells, pick, currency, digits, shared, warn, tax_classes)
        if book is None:
            skipped += 1
            continue
        if book.isbn13 in seen:
            warn("isbn", f"ISBN {book.isbn} is already listed on line {seen[book.isbn13]}; this row is skipped.")
            skipped += 1
            continue
        seen[book.isbn13] = line
        books.append(book)
    if not books:
        detail = "; ".join(str(w) for w in warnings[:5])
        raise CatalogError("catalog_no_rows", "The catalog %(path)s has no valid book rows, so the kiosk cannot "
                           "start. Fix the rows and start again. %(detail)s", path=str(path), detail=detail)
    return Catalog(path=path, currency=currency, books=books, warnings=warnings, skipped=skipped)


MAX_UPLOAD = 8 * 1024 * 1024  # a 100k-title catalog is about 6 MB


def parse_upload(name, data, currency, tax_classes=()):
    """A catalog from an uploaded file's bytes, checked like the file on disk; CatalogError when unusable.

    Unlike a file on disk (read as Windows-1252 when it is not UTF-8), an upload that is not UTF-8 is refused:
    the person uploading can save it again as CSV UTF-8, and accents then come out right."""
    if len(data) > MAX_UPLOAD:
        raise CatalogError("upload_too_large", "%(name)s is larger than %(mb)s MB. Split it, or remove the "
                           "description column, and upload it again.", name=name, mb=MAX_UPLOAD // (1024 * 1024))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise CatalogError("upload_not_utf8", "%(name)s is not UTF-8 (line %(line)s has a character it cannot read). "
                           "In the spreadsheet, save it as 'CSV UTF-8' and upload it again.", name=name,
                           line=line) from None
    lines = text.splitlines(keepends=True)
    if not lines:
        raise CatalogError("upload_empty", "%(name)s is empty. Add a header row '%(header)s' and one row per book.",
                           name=name, header=",".join(REQUIRED))
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    return _parse(Path(name), csv.reader(lines, delimiter=delimiter), currency, None, tax_classes)


def check_book(fields, currency, tax_classes=()):
    """A Book from a staff form's fields (the CSV's column names), by the CSV's own rules, and what is wrong
    with them as {column: message} (empty when the book is good)."""
    problems = {}

    def warn(column, message):
        problems[column] = message

    cells = [str(fields.get(name, "") or "").strip() for name in REQUIRED + OPTIONAL]
    book = _parse_row(cells, tuple, currency, exponent(currency), {}, warn, tax_classes)
    return (book if not problems else None), problems


def with_entries(base, entries, tax_classes=()):
    """The catalog file's books with the staff screen's entries on top: an entry replaces its ISBN's book or
    adds one, and a hidden entry takes its book off sale. Entries priced in another currency, or of a tax class
    KIOSK_TAX_RATES no longer has (changed in Settings, or another counter's rates), are set aside."""
    books = {b.isbn13: b for b in base.books}
    warnings = list(base.warnings)
    hidden = set()
    for e in entries:
        where = f"ISBN {e['isbn']} (edited on screen)"
        if e["currency"] != base.currency:
            warnings.append(CatalogWarning(where, 0, "price", f"priced in {e['currency']}, but the shop sells in "
                                                              f"{base.currency}; edit its price again to sell it."))
            continue
        tax_class = e["tax_class"] or "standard"
        if tax_classes and not e["hidden"] and tax_class not in tax_classes:
            warnings.append(CatalogWarning(where, 0, "tax", f"{tax_class!r} is not a tax class in KIOSK_TAX_RATES "
                                                            f"({', '.join(sorted(tax_classes))}); edit its tax class "
                                                            "to sell it."))
            continue
        was = books.pop(e["isbn"], None)
        if e["hidden"]:
            hidden.add(e["isbn"])
            continue
        books[e["isbn"]] = Book(isbn=was.isbn if was else e["isbn"], isbn13=e["isbn"], title=e["title"],
                                author=e["author"], price=e["price"], stock=e["stock"], cover=e["cover"],
                                description=e["description"], category=e["category"], tax_class=e["tax_class"])
    return Catalog(path=base.path, currency=base.currency, books=list(books.values()), warnings=warnings,
                   skipped=base.skipped, hidden=hidden, edited={e["isbn"] for e in entries})

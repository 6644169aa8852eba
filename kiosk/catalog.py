"""The book catalog: a CSV that staff edit in a spreadsheet, validated row by row, with a search index."""
import csv
import heapq
import re
import unicodedata
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path

from . import isbn as isbnlib
from .money import exponent, to_minor

REQUIRED = ("isbn", "title", "author", "price", "stock")
OPTIONAL = ("cover", "description", "category")
MAX_TEXT = {"title": 300, "author": 200, "description": 4000, "category": 80, "cover": 500}
_WORD = re.compile(r"\w+")


class CatalogError(Exception):
    """The catalog cannot be used at all; the message says why and what to do."""


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


@dataclass(frozen=True)
class Warning_:
    """A skipped row or cell: file, line and column, so staff can find it in the spreadsheet."""

    file: str
    line: int
    column: str
    message: str

    def __str__(self):
        where = f"{self.file}, line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"


def fold(text):
    """Lower-case text without accents, so 'Émile' is found by 'emile'."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass
class Catalog:
    """The valid books, the warnings from loading them, and a prefix index over title, author and ISBN."""

    path: Path
    currency: str
    books: list
    warnings: list = field(default_factory=list)
    skipped: int = 0

    def __post_init__(self):
        self.books.sort(key=lambda b: (fold(b.title), b.isbn13))
        self._by_isbn = {}
        for book in self.books:
            self._by_isbn[book.isbn13] = book
            self._by_isbn[book.isbn] = book
        self._categories = sorted({b.category for b in self.books if b.category}, key=fold)
        self._index = None

    def get(self, code):
        """The book for an ISBN-10 or ISBN-13 in any spelling, or None."""
        return self._by_isbn.get(isbnlib.normalize(code))

    @property
    def categories(self):
        """The distinct categories, sorted."""
        return self._categories

    def _build_index(self):
        # One sorted list of (word, position) pairs: a prefix query is two bisections.
        pairs = set()
        for pos, book in enumerate(self.books):
            for word in _WORD.findall(fold(f"{book.title} {book.author}")):
                pairs.add((word, pos))
            pairs.add((book.isbn13, pos))
            pairs.add((book.isbn.lower(), pos))
        entries = sorted(pairs)
        self._index = ([w for w, _ in entries], [p for _, p in entries])

    def _matches(self, word):
        words, positions = self._index
        lo = bisect_left(words, word)
        hi = bisect_left(words, word + "\U0010ffff", lo)
        return set(positions[lo:hi])

    def search(self, query, limit=48, category=""):
        """Books whose title or author words, or ISBN, start with every word of the query, in title order."""
        if self._index is None:
            self._build_index()
        digits = re.sub(r"[\s-]", "", query)
        words = [digits.lower()] if re.fullmatch(r"\d{4,12}[\dXx]?", digits) else _WORD.findall(fold(query))
        if not words:
            return self.page(1, size=limit, category=category)[0]
        hits = None
        for word in sorted(words, key=len, reverse=True):  # the longest word narrows fastest
            found = self._matches(word)
            hits = found if hits is None else hits & found
            if not hits:
                return []
        if category:
            hits = [p for p in hits if self.books[p].category == category]
        return [self.books[p] for p in heapq.nsmallest(limit, hits)]

    def page(self, number, size=24, category=""):
        """One page of the catalog in title order, and the number of pages."""
        books = [b for b in self.books if b.category == category] if category else self.books
        pages = max(1, -(-len(books) // size))
        number = min(max(1, number), pages)
        return books[(number - 1) * size:number * size], pages


def _read_text(path):
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        # Spreadsheets on Windows often save "CSV" in the legacy code page.
        return raw.decode("cp1252", errors="replace"), "the file is not UTF-8; read it as Windows-1252. " \
            "Save it as 'CSV UTF-8' to be sure accents come out right."


def _clean(value):
    return (value or "").strip()


def _parse_row(row, currency, warn):
    isbn_raw = _clean(row.get("isbn"))
    code = isbnlib.normalize(isbn_raw)
    if not code:
        return warn("isbn", f"{isbn_raw!r} is not an ISBN-10 or ISBN-13.")
    if not isbnlib.is_valid(code):
        return warn("isbn", f"{isbn_raw!r} has a wrong check digit; check it against the book's barcode.")
    title, author = _clean(row.get("title")), _clean(row.get("author"))
    if not title:
        return warn("title", "the title is empty.")
    if not author:
        return warn("author", "the author is empty.")
    price_raw = _clean(row.get("price"))
    try:
        price = to_minor(price_raw, currency)
    except ValueError as exc:
        digits = exponent(currency)
        example = "1500" if digits == 0 else "23." + "0" * digits
        return warn("price", f"{exc}. Write the price in {currency} like {example}, without a currency sign.")
    stock_raw = _clean(row.get("stock"))
    if not re.fullmatch(r"\d{1,7}", stock_raw):
        return warn("stock", f"{stock_raw!r} is not a whole number of copies (0 or more).")
    fields = {name: _clean(row.get(name)) for name in OPTIONAL}
    for name, value in (("title", title), ("author", author), *fields.items()):
        if len(value) > MAX_TEXT[name]:
            return warn(name, f"the {name} is longer than {MAX_TEXT[name]} characters.")
    cover = fields["cover"]
    if cover and (re.match(r"^[a-z]+:", cover, re.I) or ".." in cover or cover.startswith("/")):
        # Covers are files beside the catalog; the kiosk never fetches from the network.
        warn("cover", f"{cover!r} must be a file name in the catalog's covers folder, not a URL or path; "
                      "the book is listed without a cover.")
        cover = ""
    return Book(isbn=code, isbn13=isbnlib.to_isbn13(code), title=title, author=author, price=price,
                stock=int(stock_raw), cover=cover, description=fields["description"], category=fields["category"])


def load_catalog(path, currency):
    """Load and validate a catalog CSV; bad rows are skipped with a warning, no valid row is a CatalogError."""
    path = Path(path)
    name = path.name
    try:
        text, encoding_note = _read_text(path)
    except OSError as exc:
        raise CatalogError(f"Cannot read the catalog {path}: {exc.strerror}. Check KIOSK_CATALOG in .env.") from None
    lines = text.splitlines()
    if not lines:
        raise CatalogError(f"The catalog {path} is empty. Add a header row '{','.join(REQUIRED)}' and one row per book.")
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    reader = csv.DictReader(lines, delimiter=delimiter)
    header = [_clean(h).lower() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise CatalogError(f"The catalog {path} has no column {', '.join(missing)}. "
                           f"Its first row must name the columns: {','.join(REQUIRED)} (and optionally "
                           f"{','.join(OPTIONAL)}).")
    warnings = []
    if encoding_note:
        warnings.append(Warning_(name, 1, "", encoding_note))
    books, seen, skipped = [], {}, 0
    for row in reader:
        line = reader.line_num

        def warn(column, message, line=line):
            warnings.append(Warning_(name, line, column, message))

        if not any(_clean(v) for v in row.values() if isinstance(v, str)):
            continue  # blank lines are what spreadsheets leave at the end
        if None in row:
            warn("", "the row has more cells than the header; check for an unquoted comma.")
        book = _parse_row(row, currency, warn)
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
        raise CatalogError(f"The catalog {path} has no valid book rows, so the kiosk cannot start. "
                           f"Fix the rows and start again. {detail}")
    return Catalog(path=path, currency=currency, books=books, warnings=warnings, skipped=skipped)

"""The catalog's fast paths give the same answers as the plain definitions they replace."""
import re
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.make_catalog import rows
from kiosk.core import catalog as catalog_module
from kiosk.core.catalog import Catalog, fold, load_catalog
from kiosk.core.money import to_minor

HEADER = "isbn,title,author,price,stock,cover,description,category\n"


def write_rows(tmp_path, books):
    lines = [HEADER.strip()] + [",".join(f'"{b[k]}"' for k in HEADER.strip().split(",")) for b in books]
    path = tmp_path / "books.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """1,000 synthetic titles plus a few with accents, digits and shared prefixes."""
    extra = [
        {"isbn": "9780306406157", "title": "Émile et les Étoiles", "author": "Zoë Brontë", "price": "9.00",
         "stock": "1", "cover": "", "description": "", "category": "Poetry"},
        {"isbn": "0-8044-2957-X", "title": "1984 Revisited", "author": "Theo Thorne-Smith", "price": "9.00",
         "stock": "1", "cover": "", "description": "", "category": "Fiction"},
        {"isbn": "9780140449136", "title": "The Thin Theory of Themes", "author": "Ann Theobald", "price": "9.00",
         "stock": "1", "cover": "", "description": "", "category": "Science"},
    ]
    return load_catalog(write_rows(tmp_path_factory.mktemp("cat"), rows(1000) + extra), "USD")


def brute_force(catalog, query, limit=48, category=""):
    """Search by its definition: each query word starts a title or author word or an ISBN, in title order."""
    digits = re.sub(r"[\s-]", "", query)
    words = [digits.lower()] if re.fullmatch(r"\d{4,12}[\dXx]?", digits) else re.findall(r"\w+", fold(query))
    books = [b for b in catalog.books if not category or b.category == category]
    if not words:
        return books[:limit]
    found = []
    for book in books:
        have = [*re.findall(r"\w+", fold(f"{book.title} {book.author}")), book.isbn13, book.isbn.lower()]
        if all(any(h.startswith(w) for h in have) for w in words):
            found.append(book)
    return found[:limit]


def typed_queries(catalog):
    """Every prefix of a spread of title and author words, two-word queries and ISBN prefixes."""
    out = ["the", "th", "t", "emile", "EMILE ét", "zoe", "theo th", "the the", "1984", "x", "zzz q", "a a a",
           "9", "97", "978", "08", "1984 978", "theo 08044", "revisited 97"]
    for book in catalog.books[::37]:
        word = re.findall(r"\w+", book.title)[-1]
        out += [word[:n] for n in range(1, len(word) + 1)]
        first, last = book.author.split()[0], book.author.split()[-1]
        out += [f"{first} {last[:n]}" for n in range(1, 4)]
        out += [book.isbn13[:n] for n in (4, 7, 13)] + [book.isbn13[:3] + "-" + book.isbn13[3:9]]
    return out


def test_search_matches_its_definition_on_typed_queries(catalog):
    for query in typed_queries(catalog):
        assert catalog.search(query) == brute_force(catalog, query), query


def test_search_respects_limit_and_category(catalog):
    for query in ("t", "the", "a", "ma", "9789"):
        for limit in (1, 5, 48, 2000):
            assert catalog.search(query, limit=limit) == brute_force(catalog, query, limit=limit)
        for category in ("Poetry", "Science", "Nope"):
            assert catalog.search(query, category=category) == brute_force(catalog, query, category=category)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="aeiostnhrlmTHEÉé 9780-x", max_size=12))
def test_search_matches_its_definition_on_any_text(catalog, query):
    assert catalog.search(query) == brute_force(catalog, query)


def test_isbn_10_with_x_is_found_by_its_prefix(catalog):
    [book] = catalog.search("0-8044-2957-x")
    assert book.title == "1984 Revisited"
    assert catalog.search("080442")[0] is book and catalog.search("9780804429")[0] is book


def test_first_searches_at_once_build_the_index_once(catalog, monkeypatch):
    fresh = Catalog(path=catalog.path, currency="USD", books=list(catalog.books))
    built = []
    real = catalog_module._Index

    def counting(books):
        built.append(1)
        return real(books)

    monkeypatch.setattr(catalog_module, "_Index", counting)
    results = []
    threads = [threading.Thread(target=lambda: results.append(fresh.search("the"))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1
    assert all(r == brute_force(fresh, "the") for r in results) and len(results) == 6


def test_pages_by_category_are_the_category_in_title_order(catalog):
    poetry = [b for b in catalog.books if b.category == "Poetry"]
    assert len(poetry) > 24
    first, pages = catalog.page(1, category="Poetry")
    assert first == poetry[:24] and pages == -(-len(poetry) // 24)
    last, _ = catalog.page(999, category="Poetry")
    assert last == poetry[(pages - 1) * 24:]
    assert catalog.page(1, category="Nope") == ([], 1)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789.-+eE ,$", max_size=16), st.sampled_from(["USD", "JPY", "BHD"]))
def test_price_fast_path_agrees_with_to_minor(raw, currency):
    digits = {"USD": 2, "JPY": 0, "BHD": 3}[currency]
    try:
        expected = to_minor(raw.strip(), currency)
    except ValueError:
        expected = ValueError
    try:
        got = catalog_module._price(raw.strip(), currency, digits)
    except ValueError:
        got = ValueError
    assert got == expected


def test_repeated_strings_are_stored_once(tmp_path):
    catalog = load_catalog(write_rows(tmp_path, rows(300)), "USD")
    categories = {id(b.category) for b in catalog.books}
    covers = {id(b.cover) for b in catalog.books}
    assert len(categories) == len({b.category for b in catalog.books})
    assert len(covers) == len({b.cover for b in catalog.books})


def test_row_shapes_match_the_header(tmp_path):
    path = tmp_path / "books.csv"
    # A repeated column: the last one counts. A short row reads its missing cells as empty.
    # A blank row with a stray cell past the header is still a blank row.
    path.write_text("isbn,title,author,price,stock,title\n"
                    "9780306406157,First,Ann,1.00,2,Second\n"
                    "9780140449136,,Bob,1.00,1\n"
                    ",,,,,,stray\n", encoding="utf-8")
    catalog = load_catalog(path, "USD")
    assert [b.title for b in catalog.books] == ["Second"]
    assert [(w.line, w.column) for w in catalog.warnings] == [(3, "title")]


def test_an_absurd_price_is_a_warning_not_a_hang(tmp_path):
    # "1e999990" once took minutes to become an int, and "1e06518817" raised decimal.Overflow.
    path = tmp_path / "books.csv"
    path.write_text(HEADER + "9780306406157,Big,Ann,1e999990,1\n9780140449136,Bigger,Bob,1e06518817,1\n"
                    "9780804429573,Fine,Cy,2.50,1\n", encoding="utf-8")
    catalog = load_catalog(path, "USD")
    assert [b.title for b in catalog.books] == ["Fine"]
    assert [(w.line, w.column) for w in catalog.warnings] == [(2, "price"), (3, "price")]
    assert all("too large" in w.message for w in catalog.warnings)


def test_absent_optional_columns_read_empty_even_with_extra_cells(tmp_path):
    path = tmp_path / "books.csv"
    path.write_text("isbn,title,author,price,stock\n9780306406157,T,A,1.00,2,stray\n", encoding="utf-8")
    catalog = load_catalog(path, "USD")
    [book] = catalog.books
    assert (book.cover, book.description, book.category) == ("", "", "")
    assert [w.column for w in catalog.warnings] == [""]  # the extra cell is reported, not used

"""Catalog parsing: every kind of bad row is skipped with a warning naming file, line and column."""
import pytest

from kiosk.core.catalog import CatalogError, load_catalog

HEADER = "isbn,title,author,price,stock,cover,description,category\n"
GOOD = "9780306406157,Good Book,Ann Author,23.00,4,,A fine book,Fiction\n"


def write(tmp_path, text, name="books.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def warnings_of(catalog):
    return [(w.line, w.column) for w in catalog.warnings]


def test_sample_catalog_loads_clean(tmp_path):
    from tests.support.settings import SAMPLE
    catalog = load_catalog(SAMPLE, "USD")
    assert 20 <= len(catalog.books) <= 30
    assert catalog.warnings == [] and catalog.skipped == 0
    assert all(book.cover and (SAMPLE.parent / "covers" / book.cover).is_file() for book in catalog.books)


def test_good_row_becomes_minor_units(tmp_path):
    catalog = load_catalog(write(tmp_path, HEADER + GOOD), "USD")
    [book] = catalog.books
    assert (book.isbn13, book.price, book.stock, book.category) == ("9780306406157", 2300, 4, "Fiction")


@pytest.mark.parametrize("row, column, words", [
    ("9780306406158,Bad Check,A,1.00,1", "isbn", "check digit"),
    ("12345,Short,A,1.00,1", "isbn", "not an ISBN"),
    ("030640615X,Bad Ten,A,1.00,1", "isbn", "check digit"),
    ("9780306406157,,A,1.00,1", "title", "empty"),
    ("9780306406157,T,,1.00,1", "author", "empty"),
    ("9780306406157,T,A,-1.00,1", "price", "negative"),
    ("9780306406157,T,A,1.005,1", "price", "decimal places"),
    ("9780306406157,T,A,abc,1", "price", "not a number"),
    ("9780306406157,T,A,$1.00,1", "price", "not a number"),
    ("9780306406157,T,A,1.00,-2", "stock", "whole number"),
    ("9780306406157,T,A,1.00,2.5", "stock", "whole number"),
    ("9780306406157,T,A,1.00,", "stock", "whole number"),
])
def test_bad_rows_are_skipped_with_a_located_warning(tmp_path, row, column, words):
    path = write(tmp_path, HEADER + "9780140449136,Keeper,K,5.00,1\n" + row + "\n")
    catalog = load_catalog(path, "USD")
    assert [b.title for b in catalog.books] == ["Keeper"]
    assert catalog.skipped == 1
    [warning] = catalog.warnings
    assert (warning.file, warning.line, warning.column) == ("books.csv", 3, column)
    assert words in warning.message
    assert "books.csv, line 3, column " + column in str(warning)


def test_duplicate_isbn_keeps_the_first_and_names_its_line(tmp_path):
    # The same book as ISBN-10 and ISBN-13 is a duplicate too.
    path = write(tmp_path, HEADER + GOOD + "0306406152,Same Book,Other,1.00,1\n")
    catalog = load_catalog(path, "USD")
    assert [b.title for b in catalog.books] == ["Good Book"]
    assert "line 2" in catalog.warnings[0].message and catalog.warnings[0].line == 3


def test_isbn_10_with_x_and_hyphens_is_accepted(tmp_path):
    catalog = load_catalog(write(tmp_path, HEADER + "0-8044-2957-X,Hyphens,A,1.00,1\n"), "USD")
    assert catalog.books[0].isbn == "080442957X"
    assert catalog.get("978-0-8044-2957-3") is catalog.books[0]


def test_jpy_prices_have_no_decimals(tmp_path):
    path = write(tmp_path, HEADER + "9780306406157,Yen Book,A,1500,1\n9780140449136,Bad Yen,A,1500.50,1\n")
    catalog = load_catalog(path, "JPY")
    assert [(b.title, b.price) for b in catalog.books] == [("Yen Book", 1500)]
    assert "decimal places" in catalog.warnings[0].message and "1500" in catalog.warnings[0].message


def test_cover_urls_are_refused_but_the_book_is_kept(tmp_path):
    path = write(tmp_path, HEADER + "9780306406157,T,A,1.00,1,https://example.com/c.jpg,,\n")
    catalog = load_catalog(path, "USD")
    assert catalog.books[0].cover == ""
    assert catalog.warnings[0].column == "cover"


def test_excel_exports_with_bom_semicolons_and_blank_lines_load(tmp_path):
    text = "\ufeffISBN;Title;Author;Price;Stock\n9780306406157;Semi;A;2.50;3\n;;;;\n\n"
    catalog = load_catalog(write(tmp_path, text), "USD")
    assert [(b.title, b.price) for b in catalog.books] == [("Semi", 250)]
    assert catalog.warnings == []


def test_legacy_encoding_is_read_with_a_warning(tmp_path):
    path = write(tmp_path, HEADER + "9780306406157,Café,Émile,1.00,1\n", encoding="cp1252")
    catalog = load_catalog(path, "USD")
    assert catalog.books[0].title == "Café"
    assert "UTF-8" in catalog.warnings[0].message


def test_extra_cells_warn_but_keep_the_row(tmp_path):
    catalog = load_catalog(write(tmp_path, HEADER + GOOD.strip() + ",extra\n"), "USD")
    assert len(catalog.books) == 1 and "more cells" in catalog.warnings[0].message


@pytest.mark.parametrize("text, words", [
    ("", "empty"),
    ("isbn,title,price\n9780306406157,T,1.00\n", "no column author, stock"),
    (HEADER + "9780306406158,Bad,A,1.00,1\n", "no valid book rows"),
])
def test_unusable_catalogs_refuse_with_a_reason(tmp_path, text, words):
    with pytest.raises(CatalogError, match=words):
        load_catalog(write(tmp_path, text), "USD")


def test_missing_file_says_which_setting_to_fix(tmp_path):
    with pytest.raises(CatalogError, match="KIOSK_CATALOG"):
        load_catalog(tmp_path / "nope.csv", "USD")


def test_search_by_title_author_and_isbn(tmp_path):
    from tests.support.settings import SAMPLE
    catalog = load_catalog(SAMPLE, "USD")
    assert [b.title for b in catalog.search("time mach")] == ["The Time Machine"]
    assert {b.title for b in catalog.search("wells")} == {"The Time Machine", "The War of the Worlds"}
    assert [b.title for b in catalog.search("EMILY dick")] == ["The Complete Poems of Emily Dickinson"]
    book = catalog.books[3]
    assert catalog.search(book.isbn13[:10])[0] == book
    assert catalog.search("zzzz") == []

"""The catalog as staff change it on screen: books added, edited or hidden, and new CSVs, kept in the ledger so
they survive a restart and reach every counter sharing it; and covers uploaded as a zip."""
import io
import logging
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from kiosk.core import stamps
from kiosk.core.catalog import CatalogError, check_book, load_catalog, parse_upload, with_entries
from kiosk.core.config import SAMPLE_CATALOG, resource_dir
from kiosk.ledger import catalog_entries
from kiosk.ledger import stock as shelves

log = logging.getLogger("kiosk.catalog")
COVER_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif")
MAX_COVERS_ZIP = 50 * 1024 * 1024  # uncompressed, all files together
MAX_COVER = 5 * 1024 * 1024
MAX_COVER_FILES = 5000
COMPARED = ("title", "author", "price", "stock", "cover", "description", "category", "tax_class")


def who(kiosk):
    """This counter, as the audit list names it."""
    return kiosk.kiosk_id, kiosk.settings.counter_name


def refresh(kiosk, db, file_catalog=None):
    """Put the staff screen's entries on top of the catalog file (a new one if given), sync stock, and sell it."""
    version = catalog_entries.catalog_version(db)  # read first: an edit made meanwhile is seen by the next check
    if file_catalog is not None:
        kiosk.file_catalog = file_catalog
    merged = with_entries(kiosk.file_catalog, catalog_entries.catalog_entries(db), kiosk.settings.tax_rates)
    shelves.sync_stock(db, merged.books)
    kiosk.catalog = merged
    kiosk.catalog_version = version
    return merged


def follow_other_counters(kiosk, db):
    """Load the entries again when another counter (or this one's other screen) edited the catalog."""
    if catalog_entries.catalog_version(db) != kiosk.catalog_version:
        refresh(kiosk, db)
        log.info("catalog: edits from the ledger applied (%s books)", len(kiosk.catalog.books))


def reload_file(kiosk, db):
    """Read the catalog file again (with the entries on top); CatalogError leaves the current catalog in place."""
    s = kiosk.settings
    return refresh(kiosk, db, load_catalog(s.catalog_path, s.currency, s.tax_rates))


def entry_of(book, currency, hidden=False):
    """A ledger entry (catalog_entries.ENTRY_FIELDS) for a book."""
    return {"isbn": book.isbn13, "title": book.title, "author": book.author, "price": book.price,
            "stock": book.stock, "cover": book.cover, "description": book.description, "category": book.category,
            "tax_class": book.tax_class, "currency": currency, "hidden": int(hidden)}


def form_fields(book, currency):
    """A book as the edit form's fields (the CSV's column names; the price in major units, as staff type it)."""
    return {"isbn": book.isbn13, "title": book.title, "author": book.author,
            "price": stamps.major(book.price, currency), "stock": str(book.stock), "cover": book.cover,
            "description": book.description, "category": book.category, "tax": book.tax_class}


def check(kiosk, fields):
    """A Book from a staff form by the catalog's own rules, and {field: problem}."""
    s = kiosk.settings
    return check_book(fields, s.currency, s.tax_rates)


def add_book(kiosk, db, fields):
    """Add a book typed or scanned on screen; returns (book, problems). Its count starts its stock."""
    book, problems = check(kiosk, fields)
    if book is None:
        return None, problems
    if kiosk.catalog.get(book.isbn13) is not None:
        return None, {"isbn": "This book is already in the catalog: edit it in the list below."}
    catalog_entries.save_catalog_entries(db, [entry_of(book, kiosk.settings.currency)], who(kiosk),
                                         f"added “{book.title}” ({book.isbn13}) at {kiosk.money(book.price)}, "
                                         f"{book.stock} copies")
    refresh(kiosk, db)
    return book, {}


def edit_book(kiosk, db, book, fields):
    """Change a book's details and price (the count has its own form); returns (new book, problems)."""
    fields = {**fields, "isbn": book.isbn13, "stock": str(book.stock)}  # the stock baseline stays as it is
    new, problems = check(kiosk, fields)
    if new is None:
        return None, problems
    changed = [name for name in COMPARED if getattr(new, name) != getattr(book, name)]
    if not changed:
        return book, {}
    said = ", ".join(f"price {kiosk.money(book.price)} → {kiosk.money(new.price)}" if name == "price" else name
                     for name in changed)
    catalog_entries.save_catalog_entries(db, [entry_of(new, kiosk.settings.currency)], who(kiosk),
                                         f"edited “{new.title}” ({new.isbn13}): {said}")
    refresh(kiosk, db)
    return new, {}


def set_hidden(kiosk, db, isbn, hidden):
    """Take a book off sale, or put a hidden one back; returns its title, or None when there is no such book."""
    if hidden:
        book = kiosk.catalog.get(isbn)
        entry = entry_of(book, kiosk.settings.currency, hidden=True) if book else None
    else:
        found = [e for e in catalog_entries.catalog_entries(db) if e["isbn"] == isbn and e["hidden"]]
        entry = {**{f: found[0][f] for f in catalog_entries.ENTRY_FIELDS}, "hidden": 0} if found else None
    if entry is None:
        return None
    catalog_entries.save_catalog_entries(db, [entry], who(kiosk), f"{'hid' if hidden else 'put back on sale'} "
                                         f"“{entry['title']}” ({entry['isbn']})")
    refresh(kiosk, db)
    return entry["title"]


@dataclass
class Preview:
    """What an uploaded CSV would change: new books, changed ones (with what changed), refused rows and why."""

    name: str
    added: list = field(default_factory=list)
    changed: list = field(default_factory=list)  # (old book, new book, [field names])
    unchanged: int = 0
    refused: list = field(default_factory=list)  # CatalogWarning
    books: list = field(default_factory=list)

    @property
    def entries(self):
        """The books to write: the new ones and the changed ones."""
        return self.added + [new for _, new, _ in self.changed]


def preview_upload(kiosk, name, data):
    """Compare an uploaded CSV with the catalog on sale; raises CatalogError when no row can be used."""
    s = kiosk.settings
    uploaded = parse_upload(name, data, s.currency, s.tax_rates)
    preview = Preview(name=name, refused=uploaded.warnings, books=uploaded.books)
    for book in uploaded.books:
        old = kiosk.catalog.get(book.isbn13)
        if old is None:
            preview.added.append(book)
            continue
        changed = [f for f in COMPARED if getattr(old, f) != getattr(book, f)]
        if changed:
            preview.changed.append((old, book, changed))
        else:
            preview.unchanged += 1
    return preview


def apply_upload(kiosk, db, preview):
    """Write the upload's new and changed books to the ledger in one transaction, then sync their stock."""
    entries = [entry_of(b, kiosk.settings.currency) for b in preview.entries]
    if not entries:
        return 0
    catalog_entries.save_catalog_entries(db, entries, who(kiosk),
                                         f"uploaded {preview.name}: {len(preview.added)} new, {len(preview.changed)} "
                                         f"changed, {len(preview.refused)} rows refused")
    refresh(kiosk, db)
    return len(entries)


def _cover_names(archive):
    """Each image in a covers zip and where it goes under covers/; raises CatalogError for anything unsafe."""
    found, total = [], 0
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) > MAX_COVER_FILES:
        raise CatalogError("covers_too_many", "The zip holds %(count)s files; at most %(most)s covers at a time.",
                           count=len(members), most=MAX_COVER_FILES)
    for member in members:
        path = PurePosixPath(member.filename.replace("\\", "/"))
        # A zip can name any path: only plain relative names stay inside the covers folder.
        if path.is_absolute() or ".." in path.parts or member.filename.startswith(("/", "\\")) or \
                ":" in member.filename or (member.external_attr >> 16) & 0o170000 == 0o120000:
            raise CatalogError("covers_outside", "The zip names %(name)s, a path outside its own folder; nothing "
                               "was saved. Zip only the cover image files themselves.", name=repr(member.filename))
        if path.parts[:1] == ("covers",):
            path = PurePosixPath(*path.parts[1:])  # a zipped covers/ folder goes into covers/, not covers/covers/
        if path.suffix.lower() not in COVER_SUFFIXES or path.name.startswith("."):
            continue  # thumbnails.db, __MACOSX/…: not covers
        if member.flag_bits & 0x1:
            raise CatalogError("covers_encrypted", "%(name)s is encrypted in the zip; nothing was saved. Zip the "
                               "covers again without a password.", name=member.filename)
        if member.file_size > MAX_COVER:
            raise CatalogError("cover_too_large", "%(name)s is larger than %(mb)s MB; nothing was saved. Make the "
                               "covers smaller (a few hundred KB is plenty on screen).", name=member.filename,
                               mb=MAX_COVER // (1024 * 1024))
        total += member.file_size
        if total > MAX_COVERS_ZIP:
            raise CatalogError("covers_too_big", "The covers add up to more than %(mb)s MB unpacked; nothing was "
                               "saved. Upload them in smaller zips.", mb=MAX_COVERS_ZIP // (1024 * 1024))
        found.append((member, path))
    if not found:
        raise CatalogError("covers_none",
                           "The zip holds no cover images (.jpg, .png, .webp or .gif); nothing was saved.")
    return found


def covers_folder(catalog_path):
    """The covers folder beside the catalog file; CatalogError for the bundled sample, which is not the shop's."""
    if Path(catalog_path).resolve() == (resource_dir() / SAMPLE_CATALOG).resolve():
        raise CatalogError("covers_sample", "Covers go beside your own catalog file, and the kiosk is selling the "
                           "sample books: upload your catalog CSV first (with the covers, or after it).")
    return Path(catalog_path).parent / "covers"


# Everything zipfile and zlib raise for an archive that is damaged, lies about a size, is encrypted or uses a
# compression this Python cannot undo.
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
              ValueError, OSError)


def _open_zip(data):
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except ZIP_ERRORS:
        raise CatalogError("covers_not_zip", "That file is not a zip archive, or it is damaged; nothing was saved. "
                           "Zip the cover images again and try again.") from None


def _read_member(archive, member):
    """A cover's bytes, read whole so that zipfile checks its CRC; CatalogError when the zip is damaged or lies."""
    damaged = CatalogError("cover_damaged", "%(name)s is damaged in the zip (it does not unpack as its header "
                           "says); nothing was saved. Zip the cover images again and try again.", name=member.filename)
    try:
        with archive.open(member) as src:
            data = src.read(member.file_size + 1)  # at most what the zip declared: a lying header cannot unpack more
            if len(data) > member.file_size:
                raise damaged
            src.read()  # to the end, where zipfile checks the CRC
    except ZIP_ERRORS:
        raise damaged from None
    return data


def check_covers(data):
    """How many covers a zip holds; CatalogError when it is not a zip, damaged, encrypted, too big, or names a path
    outside it. Every cover is unpacked in memory to be sure, so a form that checked it saves it."""
    with _open_zip(data) as archive:
        names = _cover_names(archive)
        for member, _ in names:
            _read_member(archive, member)
        return len(names)


def save_covers(folder, data):
    """Unpack a covers zip into `folder` (the covers/ beside the catalog); returns how many covers it added.

    Every name is checked before anything is written, and the files are unpacked into a temporary folder
    beside it first, so a bad zip leaves the covers folder as it was."""
    folder = Path(folder)
    with _open_zip(data) as archive:
        names = _cover_names(archive)
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".covers-"))
        try:
            for member, path in names:
                target = staging.joinpath(*path.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(_read_member(archive, member))
            for _, path in names:
                dest = folder.joinpath(*path.parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                staging.joinpath(*path.parts).replace(dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return len(names)


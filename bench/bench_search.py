"""Prefix search over 1k, 10k and 100k titles: Catalog.search itself, and GET /search?partial=1 over the WSGI app.

Queries are what search-as-you-type sends (kiosk.js fires on every keystroke, from the first letter):
every prefix of a word taken from a title or an author, some two-word queries ("jane au"), and ISBN
prefixes. The first search after loading builds the index; it is reported on its own line, and it
is also in the samples of the catalog it belongs to, so nothing the kiosk waits on goes unmeasured.
"""
import random
import re
import shutil
import time

from bench.common import LOCAL, Figure, make_app, median, percentile, scratch_dir
from bench.make_catalog import catalog_path

GOAL_P95_MS = 15.0
SIZES = (1_000, 10_000, 100_000)


def queries(books, count=60, seed=3):
    """Typed prefixes: every prefix of sampled title/author words, two-word queries and ISBN prefixes."""
    rng = random.Random(seed)
    out = []
    for book in rng.sample(books, min(count, len(books))):
        kind = rng.random()
        if kind < 0.15:
            out += [book.isbn13[:n] for n in range(4, 14, 3)]
        elif kind < 0.35:
            first, *rest = book.author.split()
            last = rest[-1] if rest else first
            out += [f"{first} {last[:n]}" for n in range(1, len(last) + 1)]
        else:
            word = rng.choice(re.findall(r"\w+", f"{book.title} {book.author}"))
            out += [word[:n] for n in range(1, len(word) + 1)]
    return out


def _search_figures(size, tmp):
    from kiosk.core.catalog import load_catalog

    path = catalog_path(size)
    catalog = load_catalog(path, "USD")
    qs = queries(catalog.books)
    start = time.perf_counter()
    catalog.search(qs[0])  # builds the index
    first = (time.perf_counter() - start) * 1000
    call = [first]
    for q in qs[1:] + qs:  # every query twice; the first pass is as cold as a real keystroke gets
        start = time.perf_counter()
        catalog.search(q)
        call.append((time.perf_counter() - start) * 1000)
    del catalog

    app = make_app(path, tmp / f"app-{size}")
    client = app.test_client()
    client.get("/", headers=LOCAL)  # the session cookie, as a browser has it
    start = time.perf_counter()
    assert client.get("/search", query_string={"q": qs[0], "partial": "1"}, headers=LOCAL).status_code == 200
    http_first = (time.perf_counter() - start) * 1000
    http = [http_first]
    for q in qs[1:] + qs:
        start = time.perf_counter()
        response = client.get("/search", query_string={"q": q, "partial": "1"}, headers=LOCAL)
        http.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    how = f"{len(qs)} typed prefixes ×2, p50 {median(call):.2f} ms, max {max(call):.1f} ms"
    rows = [Figure(f"Catalog.search p95, {size // 1000}k titles", percentile(call, 95), "ms",
                   GOAL_P95_MS if size == 100_000 else None, how),
            Figure(f"GET /search?partial=1 p95, {size // 1000}k titles", percentile(http, 95), "ms",
                   GOAL_P95_MS if size == 100_000 else None,
                   f"Flask test client through the whole WSGI app; p50 {median(http):.2f} ms"),
            Figure(f"first search after load (builds the index), {size // 1000}k titles", first, "ms", None,
                   f"over HTTP: {http_first:.1f} ms")]
    return rows


def run(sizes=SIZES):
    tmp = scratch_dir("search")
    try:
        return [row for size in sizes for row in _search_figures(size, tmp)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    import sys

    from bench.common import print_table
    print_table(run([int(a) for a in sys.argv[1:]] or SIZES))

"""Synthetic catalogs of 1k, 10k and 100k titles, deterministic and offline, written to a cache folder.

`python -m bench.make_catalog [N ...]` prints the paths. The same N always gives the same bytes.
"""
import csv
import os
import random
import sys
import tempfile
from pathlib import Path

VERSION = 1  # bump when the generator changes, so cached files are rebuilt
SIZES = (1_000, 10_000, 100_000)

FIRST = ["Ada", "Adele", "Agnes", "Ahmed", "Aiko", "Alan", "Albert", "Alice", "Amara", "Ana", "Andrea", "Anna", "Antoine", "Arjun", "Astrid", "Beatriz", "Ben", "Bernard", "Bianca", "Carlos", "Carmen", "Caroline", "Catherine", "Chen", "Chiara", "Chloé", "Clara", "Daniel", "David", "Diego", "Dmitri", "Edith", "Elena", "Elif", "Eliza", "Émile", "Emily", "Emma", "Erik", "Esther", "Fatima", "Felix", "Fiona", "Francesca", "François", "Frida", "George", "Grace", "Hannah", "Hans", "Harriet", "Hiroshi", "Ingrid", "Isabel", "Ivan", "Jack", "James", "Jane", "Javier", "Joan", "John", "José", "Julia", "Karen", "Kenji", "Laila", "Laura", "Leo", "Liam", "Lucia", "Luis", "Margaret", "Maria", "Marie", "Mark", "Martha", "Mateo", "Maya", "Mei", "Michael", "Miguel", "Mina", "Nadia", "Naomi", "Nikolai", "Nora", "Olga", "Oliver", "Omar", "Paul", "Pedro", "Priya", "Rachel", "Rafael", "Ravi", "Rosa", "Ruth", "Samuel", "Sara", "Sofia", "Søren", "Sunita", "Thomas", "Tomás", "Ursula", "Victor", "Virginia", "Walter", "William", "Yusuf", "Zoë", "Zora"]
LAST = ["Abbott", "Adeyemi", "Akhtar", "Alvarez", "Andersen", "Armstrong", "Baker", "Banerjee", "Barnes", "Becker", "Bell", "Bergström", "Bishop", "Brennan", "Brooks", "Byrne", "Campbell", "Carter", "Castillo", "Chatterjee", "Clarke", "Coleman", "Costa", "Cruz", "Dalton", "Davies", "Delacroix", "Dubois", "Duncan", "Eriksson", "Evans", "Fischer", "Fitzgerald", "Fleming", "Fontaine", "Foster", "García", "Gill", "Gonzalez", "Graham", "Grant", "Hale", "Hansen", "Harper", "Hayes", "Hoffmann", "Holmes", "Hughes", "Ibrahim", "Ishikawa", "Jensen", "Johansson", "Kaur", "Keller", "Kennedy", "Khan", "Kowalski", "Lambert", "Larsen", "Laurent", "Lee", "Lindqvist", "Lopez", "Marsh", "Martín", "Matsumoto", "McCarthy", "Meyer", "Moreau", "Morgan", "Müller", "Murphy", "Nakamura", "Navarro", "Nguyen", "Novak", "O'Brien", "Okafor", "Olsen", "Ortiz", "Park", "Patel", "Pereira", "Petrov", "Quinn", "Ramos", "Reyes", "Richter", "Rossi", "Russo", "Santos", "Schmidt", "Sharma", "Silva", "Singh", "Sørensen", "Stewart", "Suzuki", "Tanaka", "Taylor", "Thornton", "Torres", "Turner", "Vargas", "Wagner", "Walsh", "Weber", "Whitfield", "Wilson", "Yamamoto", "Young", "Zhang", "Zimmermann"]
ADJ = ["Ancient", "Bitter", "Black", "Blue", "Broken", "Burning", "Crimson", "Dark", "Distant", "Drowned", "Empty", "Endless", "Fallen", "Forgotten", "Frozen", "Gentle", "Glass", "Golden", "Green", "Hidden", "Hollow", "Invisible", "Iron", "Last", "Little", "Long", "Lost", "Midnight", "Narrow", "Northern", "Painted", "Pale", "Quiet", "Red", "Restless", "Secret", "Silent", "Silver", "Small", "Southern", "Stolen", "Strange", "Summer", "Sunken", "Tender", "Thin", "Vanishing", "Wandering", "White", "Wild", "Winter", "Wooden", "Yellow"]
NOUN = ["Apple", "Archive", "Atlas", "Bridge", "Cartographer", "Castle", "City", "Clock", "Coast", "Country", "Crossing", "Daughter", "Desert", "Door", "Dream", "Engine", "Empire", "Field", "Fire", "Forest", "Garden", "Ghost", "Girl", "Harbour", "Heart", "House", "Island", "Journey", "Kingdom", "Lake", "Letter", "Library", "Light", "Lighthouse", "Map", "Machine", "Meadow", "Mirror", "Moon", "Mountain", "Night", "Ocean", "Orchard", "Painter", "Promise", "Queen", "River", "Road", "Rose", "Sea", "Shadow", "Ship", "Silence", "Sister", "Sky", "Song", "Station", "Stone", "Storm", "Stranger", "Summer", "Sun", "Tide", "Tower", "Traveller", "Tree", "Valley", "Voyage", "War", "Water", "Wind", "Window", "Winter", "Wolf", "World"]
SUBJECT = ["Astronomy", "Bees", "Birds", "Bread", "Chemistry", "Climate", "Coffee", "Democracy", "Evolution", "Fungi", "Gardening", "Geology", "Mathematics", "Memory", "Music", "Oceans", "Philosophy", "Photography", "Rivers", "Sleep", "Statistics", "Tea", "Trees", "Weather", "Whales"]
PLACE = """Africa|Alexandria|Berlin|Cairo|the Andes|the Arctic|the Baltic|the Balkans|Kyoto|Lisbon|London|Madrid|
Mexico|Naples|Paris|Patagonia|Prague|Rome|Siberia|Tokyo|Venice|Vienna""".replace("\n", "").split("|")
CATEGORIES = ["Fiction", "Mystery", "Classics", "Science", "History", "Children", "Poetry", "Travel", "Cooking",
              "Biography", "Fantasy", "Science Fiction"]
COVERS = 12  # distinct cover files shared by the rows that have one


def _plural(noun):
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    if noun.endswith(("s", "sh", "ch", "x")):
        return noun + "es"
    return "Wolves" if noun == "Wolf" else noun + "s"


def _title(rng):
    a, n, n2 = rng.choice(ADJ), rng.choice(NOUN), rng.choice(NOUN)
    pattern = rng.randrange(12)
    return [f"The {a} {n}", f"The {n} of {_plural(n2)}", f"{a} {n}", f"A {n} for {rng.choice(FIRST)}",
            f"The {n}'s {n2}", f"{n} and {n2}", f"The Last {n} of {rng.choice(PLACE)}",
            f"A Short History of {rng.choice(SUBJECT)}", f"{rng.choice(SUBJECT)}: A Beginner's Guide",
            f"The {a} {n}: A Novel", f"{rng.choice(PLACE)} by {n}", f"Letters from {rng.choice(PLACE)}"][pattern]


def _isbn13(rng):
    core = rng.choice(("978", "979")) + f"{rng.randrange(10 ** 9):09d}"
    check = (10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(core)) % 10) % 10
    return core + str(check)


def _isbn10(isbn13):
    core = isbn13[3:12]
    check = (11 - sum((10 - i) * int(d) for i, d in enumerate(core)) % 11) % 11
    return core + ("X" if check == 10 else str(check))


def rows(count, seed=7):
    """The catalog rows for `count` titles, as dicts with the kiosk's CSV columns."""
    rng = random.Random(seed * 1_000_003 + count)
    seen = set()
    out = []
    while len(out) < count:
        code = _isbn13(rng)
        if code in seen:
            continue
        seen.add(code)
        title = _title(rng)
        if rng.random() < 0.3:
            title += f", Volume {rng.randrange(1, 9)}" if rng.random() < 0.3 else f" ({rng.choice(SUBJECT)} Edition)"
        author = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        if rng.random() < 0.1:
            author += f" and {rng.choice(FIRST)} {rng.choice(LAST)}"
        # Some staff type ISBN-10s with hyphens; the kiosk normalizes them.
        shown = code
        if code.startswith("978") and rng.random() < 0.05:
            ten = _isbn10(code)
            shown = f"{ten[0]}-{ten[1:4]}-{ten[4:9]}-{ten[9]}"
        out.append({
            "isbn": shown,
            "title": title,
            "author": author,
            "price": f"{rng.randrange(4, 40)}.{rng.choice(('00', '50', '95', '99'))}",
            "stock": str(rng.choice((0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 20))),
            "cover": f"cover-{rng.randrange(COVERS):02d}.svg" if rng.random() < 0.8 else "",
            "description": f"A {rng.choice(ADJ).lower()} story of {_plural(rng.choice(NOUN)).lower()} and "
                           f"{_plural(rng.choice(NOUN)).lower()}, set in {rng.choice(PLACE)}.",
            "category": rng.choice(CATEGORIES),
        })
    return out


def cache_dir():
    """Where generated catalogs live: $KIOSK_BENCH_CACHE, else a folder in the system temp dir. Never in git."""
    return Path(os.environ.get("KIOSK_BENCH_CACHE") or Path(tempfile.gettempdir()) / "kiosk-bench")


def _write_covers(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(COVERS):
        path = folder / f"cover-{i:02d}.svg"
        if not path.exists():
            hue = i * 360 // COVERS
            path.write_text(f'<svg xmlns="http://www.w3.org/2000/svg" width="160" height="240">'
                            f'<rect width="160" height="240" fill="hsl({hue},45%,40%)"/></svg>\n')


def catalog_path(count):
    """The CSV for `count` titles, generated on first use."""
    folder = cache_dir() / f"catalog-v{VERSION}-{count}"
    path = folder / "books.csv"
    if not path.is_file():
        _write_covers(folder / "covers")
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows(1)[0]))
            writer.writeheader()
            writer.writerows(rows(count))
        tmp.replace(path)
    return path


def main(argv):
    """Generate the catalogs named on the command line (default 1k, 10k, 100k) and print their paths."""
    for count in [int(a) for a in argv] or SIZES:
        print(catalog_path(count))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

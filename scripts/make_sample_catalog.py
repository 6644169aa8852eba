"""Regenerate the bundled sample catalog and its SVG covers; nothing is fetched from the network."""
import csv
import hashlib
import html
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "sample_catalog"

BOOKS = [
    ("Pride and Prejudice", "Jane Austen", "12.99", 6, "Classics", "Elizabeth Bennet meets the proud Mr Darcy."),
    ("Moby-Dick", "Herman Melville", "15.50", 3, "Classics", "Captain Ahab hunts the white whale."),
    ("Frankenstein", "Mary Shelley", "10.00", 8, "Classics", "A scientist gives life to a creature he cannot face."),
    ("The Adventures of Sherlock Holmes", "Arthur Conan Doyle", "11.25", 5, "Mystery", "Twelve cases from Baker Street."),
    ("The Moonstone", "Wilkie Collins", "13.40", 2, "Mystery", "A cursed diamond vanishes from a country house."),
    ("The Secret Adversary", "Agatha Christie", "9.99", 4, "Mystery", "Tommy and Tuppence take on a secret enemy."),
    ("Dracula", "Bram Stoker", "12.00", 7, "Horror", "Letters and diaries tell of a count from Transylvania."),
    ("The Turn of the Screw", "Henry James", "8.75", 3, "Horror", "A governess, two children and two ghosts."),
    ("The Time Machine", "H. G. Wells", "9.50", 6, "Science Fiction", "A traveller reaches the year 802,701."),
    ("Twenty Thousand Leagues Under the Seas", "Jules Verne", "14.00", 4, "Science Fiction", "Aboard the Nautilus with Captain Nemo."),
    ("The War of the Worlds", "H. G. Wells", "10.50", 5, "Science Fiction", "Martians land in Surrey."),
    ("Alice's Adventures in Wonderland", "Lewis Carroll", "8.99", 9, "Children", "Down the rabbit hole."),
    ("The Wind in the Willows", "Kenneth Grahame", "11.00", 4, "Children", "Mole, Rat, Badger and the irrepressible Toad."),
    ("Anne of Green Gables", "L. M. Montgomery", "10.75", 5, "Children", "An orphan girl arrives at Green Gables."),
    ("The Secret Garden", "Frances Hodgson Burnett", "9.25", 6, "Children", "A locked garden comes back to life."),
    ("Walden", "Henry David Thoreau", "13.00", 3, "Nonfiction", "Two years in a cabin by Walden Pond."),
    ("The Souls of Black Folk", "W. E. B. Du Bois", "14.50", 2, "Nonfiction", "Essays on race and America."),
    ("A Room of One's Own", "Virginia Woolf", "11.50", 5, "Nonfiction", "A woman must have money and a room of her own."),
    ("Leaves of Grass", "Walt Whitman", "16.00", 2, "Poetry", "Whitman's lifelong book of poems."),
    ("The Complete Poems of Emily Dickinson", "Emily Dickinson", "18.00", 3, "Poetry", "Nearly eighteen hundred poems."),
    ("Les Misérables", "Victor Hugo", "19.99", 2, "Classics", "Jean Valjean's long road to grace."),
    ("Anna Karenina", "Leo Tolstoy", "17.50", 3, "Classics", "Happy families are all alike."),
    ("Don Quixote", "Miguel de Cervantes", "18.50", 2, "Classics", "A knight errant and his squire set out."),
    ("The Art of War", "Sun Tzu", "7.99", 10, "Nonfiction", "Thirteen chapters on strategy."),
]

PALETTE = ["#1d4e89", "#7a1f3d", "#2f5d3a", "#5b3a8c", "#8a4b0f", "#0f5e63", "#3b3b3b", "#9c2a2a"]


def isbn13(seed):
    """A checksum-valid ISBN-13 in the 978 range, stable for a seed."""
    digits = "978" + str(int(hashlib.sha256(seed.encode()).hexdigest(), 16))[:9]
    check = (10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10) % 10
    return digits + str(check)


def isbn10(seed):
    """A checksum-valid ISBN-10, for the rows that show the catalog takes both forms."""
    core = str(int(hashlib.sha256(seed.encode()).hexdigest(), 16))[:9]
    check = (11 - sum((10 - i) * int(d) for i, d in enumerate(core)) % 11) % 11
    return core + ("X" if check == 10 else str(check))


def cover_svg(title, author, colour):
    """A plain typographic cover."""
    lines = textwrap.wrap(title, 14)[:5]
    text = "".join(f'<tspan x="100" dy="{0 if i == 0 else 28}">{html.escape(line)}</tspan>' for i, line in enumerate(lines))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="200" height="300" viewBox="0 0 200 300">'
            f'<rect width="200" height="300" fill="{colour}"/>'
            f'<rect x="12" y="12" width="176" height="276" fill="none" stroke="#fff" stroke-opacity=".5" stroke-width="2"/>'
            f'<text x="100" y="{120 - 14 * len(lines)}" fill="#fff" font-family="DejaVu Serif, serif" font-size="22" '
            f'font-weight="bold" text-anchor="middle">{text}</text>'
            f'<text x="100" y="260" fill="#fff" font-family="DejaVu Sans, sans-serif" font-size="14" '
            f'text-anchor="middle">{html.escape(author)}</text></svg>\n')


def main():
    (ROOT / "covers").mkdir(parents=True, exist_ok=True)
    with open(ROOT / "books.csv", "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["isbn", "title", "author", "price", "stock", "cover", "description", "category"])
        for n, (title, author, price, stock, category, description) in enumerate(BOOKS):
            code = isbn10(title) if n % 8 == 7 else isbn13(title)
            name = f"{code}.svg"
            (ROOT / "covers" / name).write_text(cover_svg(title, author, PALETTE[n % len(PALETTE)]))
            out.writerow([code, title, author, price, stock, name, description, category])


if __name__ == "__main__":
    main()

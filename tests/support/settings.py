"""Settings for a test kiosk, as the kiosk would load them, on a temporary data folder."""
import csv
from pathlib import Path

from kiosk.core.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_catalog" / "books.csv"


def make_settings(tmp_path, stripe=None, **env):
    """Settings as the kiosk would load them, on a temporary data folder."""
    values = {"KIOSK_DATA_DIR": str(tmp_path / "data"), "KIOSK_CATALOG": str(SAMPLE)}
    if stripe is not None:
        values.update(STRIPE_SECRET_KEY=stripe.sk, STRIPE_PUBLISHABLE_KEY=stripe.pk, STRIPE_API_BASE=stripe.url)
    values.update(env)
    settings = load_settings(environ=values, env_file=tmp_path / "no.env")
    settings.stripe_retries = 0
    settings.stripe_timeout = 5
    return settings


def sample_rows():
    """The sample catalog's rows, as dicts to change before writing them with write_catalog()."""
    with SAMPLE.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_catalog(folder, rows):
    """Write `rows` (dicts with the sample's columns, and any added) as folder/books.csv, beside the sample's
    covers; returns its path."""
    path = Path(folder) / "books.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*rows[0].keys()])
        writer.writeheader()
        writer.writerows(rows)
    (Path(folder) / "covers").symlink_to(SAMPLE.parent / "covers")
    return path

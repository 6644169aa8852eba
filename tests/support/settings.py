"""Settings for a test kiosk, as the kiosk would load them, on a temporary data folder."""
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

"""Configuration checks: each mistake staff can make gets a message saying what to fix."""
import pytest

from kiosk import StartupError, create_app
from kiosk.core.config import check_keys, load_settings
from tests.support.settings import make_settings


def settings(tmp_path, **env):
    return load_settings(environ=env, env_file=tmp_path / "none.env")


def test_no_keys_is_a_setup_problem_not_fatal(tmp_path):
    s = settings(tmp_path)
    assert not s.payments_ready
    assert [p.setting for p in s.problems] == ["STRIPE_SECRET_KEY"]
    assert "not set up" in s.problems[0].message and not s.problems[0].fatal


@pytest.mark.parametrize("secret, publishable, setting, words", [
    ("sk_test_abc", "", "STRIPE_PUBLISHABLE_KEY", "missing"),
    ("", "pk_test_abc", "STRIPE_SECRET_KEY", "missing"),
    ("pk_test_abc", "pk_test_abc", "STRIPE_SECRET_KEY", "publishable key"),
    ("sk_test_abc", "sk_test_abc", "STRIPE_PUBLISHABLE_KEY", "secret key"),
    ("sk_test_abc", "pk_live_abc", "STRIPE_SECRET_KEY", "test key but STRIPE_PUBLISHABLE_KEY is a live key"),
    ("sk_live_abc", "pk_test_abc", "STRIPE_SECRET_KEY", "live key but STRIPE_PUBLISHABLE_KEY is a test key"),
    ("hello", "pk_test_abc", "STRIPE_SECRET_KEY", "not a Stripe secret key"),
])
def test_key_mistakes(secret, publishable, setting, words):
    problems = check_keys(secret, publishable)
    assert any(p.setting == setting and words in p.message for p in problems), problems
    assert all(p.fix for p in problems)


def test_good_keys(tmp_path):
    s = settings(tmp_path, STRIPE_SECRET_KEY="sk_test_abc", STRIPE_PUBLISHABLE_KEY="pk_test_abc")
    assert s.payments_ready and s.test_mode and s.problems == []


def test_env_file_is_read_and_environment_overrides(tmp_path):
    env = tmp_path / ".env"
    env.write_text("KIOSK_SHOP_NAME=From File\nKIOSK_CURRENCY=jpy\nKIOSK_CATALOG=books.csv\n")
    (tmp_path / "books.csv").write_text("x")
    s = load_settings(environ={"KIOSK_SHOP_NAME": "From Env"}, env_file=env)
    assert (s.shop_name, s.currency) == ("From Env", "JPY")
    assert s.catalog_path == tmp_path / "books.csv"


def test_bad_values_are_reported(tmp_path):
    s = settings(tmp_path, KIOSK_CURRENCY="xyz", KIOSK_LOCALE="zz_QQ", KIOSK_IDLE_SECONDS="soon",
                 KIOSK_CATALOG=str(tmp_path / "missing.csv"))
    found = {p.setting: p for p in s.problems}
    assert found["KIOSK_CURRENCY"].fatal and found["KIOSK_CATALOG"].fatal
    assert not found["KIOSK_LOCALE"].fatal and s.locale == "en_US"
    assert s.idle_seconds == 90 and "whole number" in found["KIOSK_IDLE_SECONDS"].message


def test_fatal_problems_stop_the_start_with_the_reason(tmp_path):
    with pytest.raises(StartupError, match="KIOSK_CATALOG"):
        create_app(make_settings(tmp_path, KIOSK_CATALOG=str(tmp_path / "gone.csv")))


def test_catalog_without_valid_rows_stops_the_start(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("isbn,title,author,price,stock\n123,X,Y,1,1\n")
    with pytest.raises(StartupError, match="no valid book rows"):
        create_app(make_settings(tmp_path, KIOSK_CATALOG=str(bad)))


def test_install_secret_is_strong_and_differs_per_install(tmp_path):
    one = create_app(make_settings(tmp_path / "a"))
    two = create_app(make_settings(tmp_path / "b"))
    again = create_app(make_settings(tmp_path / "a"))
    assert len(one.secret_key) >= 64 and one.secret_key != two.secret_key
    assert again.secret_key == one.secret_key
    assert oct((tmp_path / "a" / "data" / "secret_key").stat().st_mode & 0o777) == "0o600"

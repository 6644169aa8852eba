"""The Settings form's tables read on the server: tax classes from rows (empty rows ignored, a half-filled or
wrong row refused by parse_rates), the address from its lines, the time zone from its picker."""
from werkzeug.datastructures import MultiDict

from kiosk.admin import configure
from kiosk.core import tax
from tests.support.settings import make_settings


def rows(**columns):
    return MultiDict([(name, value) for name, values in columns.items() for value in values])


def test_tax_rows_become_the_setting_and_empty_rows_are_ignored():
    form = rows(tax_class=["standard", "", "Zero"], tax_percent=["8.875", "", "0"])
    assert configure.tax_rates_posted(form) == "standard:8.875,Zero:0"
    assert tax.parse_rates(configure.tax_rates_posted(form)) == tax.parse_rates("standard:8.875,zero:0")
    assert configure.tax_rates_posted(rows(tax_class=["", ""], tax_percent=["", ""])) == ""  # no tax
    assert configure.tax_rates_posted(MultiDict({"tax_rates": "a:1"})) == "a:1"  # the plain field still works


def test_a_half_filled_or_wrong_row_is_refused_next_to_the_table(tmp_path):
    settings = make_settings(tmp_path)
    for classes, percents in ((["standard"], [""]), ([""], ["5"]), (["vat"], ["120"]), (["a", "a"], ["1", "2"])):
        form = rows(tax_class=classes, tax_percent=percents, idle_seconds=["90"])
        proposal = configure.Proposal()
        configure._check_later(form, settings, proposal)
        assert "tax_rates" in proposal.errors and "KIOSK_TAX_RATES" not in proposal.changes, (classes, percents)


def test_address_lines_are_joined_and_a_bar_inside_a_line_is_refused(tmp_path):
    assert configure.address_posted(rows(address_line=[" 1 Main St ", "", "Town", ""])) == "1 Main St|Town"
    assert configure.address_posted(rows(address_line=["1 | 2"])) is None
    proposal = configure.Proposal()
    configure._check_later(rows(address_line=["1 | 2"], idle_seconds=["90"]), make_settings(tmp_path), proposal)
    assert "shop_address" in proposal.errors


def test_the_time_zone_comes_from_the_picker(tmp_path):
    settings = make_settings(tmp_path)
    proposal = configure.Proposal()
    configure._check_timezone(MultiDict({"timezone": "America/New_York"}), settings, proposal)
    assert proposal.changes == {"KIOSK_TIMEZONE": "America/New_York"}
    proposal = configure.Proposal()
    configure._check_timezone(MultiDict({"timezone": "Mars/Base"}), settings, proposal)
    assert "timezone" in proposal.errors and not proposal.changes


def test_the_staff_discount_limit_is_a_whole_percent_up_to_100(tmp_path):
    settings = make_settings(tmp_path)
    for typed, change in (("15", "15"), (" 0 ", "0"), ("20", None)):  # 20 is the default: nothing to change
        proposal = configure.Proposal()
        configure._check_later(rows(idle_seconds=["90"], staff_discount_max=[typed]), settings, proposal)
        assert not proposal.errors and proposal.changes.get("KIOSK_STAFF_DISCOUNT_MAX") == change, typed
    for typed in ("101", "-5", "12.5", "ten", ""):
        proposal = configure.Proposal()
        configure._check_later(rows(idle_seconds=["90"], staff_discount_max=[typed]), settings, proposal)
        assert "staff_discount_max" in proposal.errors and "KIOSK_STAFF_DISCOUNT_MAX" not in proposal.changes, typed
    assert make_settings(tmp_path, KIOSK_STAFF_DISCOUNT_MAX="15").staff_discount_max == 15
    assert make_settings(tmp_path, KIOSK_STAFF_DISCOUNT_MAX="500").staff_discount_max == 100

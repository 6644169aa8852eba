"""Promotions on the staff screen: each kind added through the form makes the ledger row the pricing reads (money
in minor units, times in UTC from the shop's clock), a refused form writes nothing and comes back as typed, a
promotion switches off and on, and the promotions CSV imports all or nothing and round-trips with its export."""
import csv
import io
import re
from decimal import Decimal

import pytest

from kiosk import create_app
from kiosk.ledger import promotions
from kiosk.ledger.promotions import FIELDS
from tests.support.client import KioskClient, signed_in
from tests.support.ledger import ledger
from tests.support.settings import make_settings

PIN = "2468"
GOOD, POEMS, KIDS = "9780306406157", "9783434922599", "9780140449136"
CATALOG = ("isbn,title,author,price,stock,category\n"
           f"{GOOD},Good Book,Ann Author,23.00,4,Paperbacks\n"
           f"{POEMS},Poems,Bea Poet,12.50,2,Paperbacks\n"
           f"{KIDS},The Odyssey,Homer,8.00,5,Children's\n")


def kiosk_app(folder, catalog_text=CATALOG, **env):
    catalog = folder / "books.csv"
    folder.mkdir(parents=True, exist_ok=True)
    catalog.write_text(catalog_text, encoding="utf-8")
    settings = make_settings(folder, None, KIOSK_STAFF_PIN=PIN, KIOSK_CATALOG=str(catalog),
                             KIOSK_TIMEZONE="America/New_York", KIOSK_DATABASE_URL="", **env)
    return create_app(settings, testing=True)


@pytest.fixture
def app(tmp_path):
    return kiosk_app(tmp_path / "front")


@pytest.fixture
def staff(app):
    return signed_in(app, PIN)


def text(reply):
    body = reply.get_data(as_text=True)
    assert "Traceback" not in body
    return body


def rows(app):
    with ledger(app) as db:
        return [dict(r) for r in db.execute("SELECT * FROM promotions ORDER BY id")]


def the_row(app):
    [row] = rows(app)
    return row


def add(staff, **fields):
    form = {"name": "Ten off", "kind": "percent", "scope": "cart", "percent": "10"}
    return staff.post("/staff/promotions", data={**form, **fields})


def upload(staff, data, name="promotions.csv"):
    return staff.post("/staff/promotions/import", data={"promotions": (io.BytesIO(data), name)},
                      content_type="multipart/form-data")


@pytest.mark.parametrize("fields, expected", [
    ({"percent": "12.5", "min_spend": "30", "starts": "2026-12-07T09:00", "ends": "2026-12-24T18:00"},
     {"kind": "percent", "scope": "cart", "percent": "12.5", "min_spend": 3000, "amount": 0,
      "starts_at": "2026-12-07 14:00:00", "ends_at": "2026-12-24 23:00:00"}),  # EST: UTC-5
    ({"kind": "amount", "scope": "category", "amount": "2.50", "category": "paperbacks", "percent": "",
      "starts": "2026-07-01T09:00"},
     {"kind": "amount", "scope": "category", "amount": 250, "category": "Paperbacks", "percent": "0",
      "starts_at": "2026-07-01 13:00:00", "ends_at": None}),  # EDT: UTC-4; the catalog's spelling kept
    ({"kind": "bundle", "scope": "books", "buy": "3", "free": "1", "percent": "50",
      "isbns": f"978-0-306-40615-7 {POEMS}\n0306406152; {POEMS}"},
     {"kind": "bundle", "scope": "books", "buy": 3, "free": 1, "percent": "0",
      "isbns": f"{GOOD},{POEMS}"}),  # the ISBN-10 of the first book is the same book, listed once
    ({"kind": "bundle", "scope": "cart", "buy": "3", "free": "2", "category": "Paperbacks"},
     {"kind": "bundle", "scope": "cart", "buy": 3, "free": 2, "category": "", "isbns": ""}),
])
def test_each_kind_added_through_the_form_is_the_ledger_row_the_pricing_reads(app, staff, fields, expected):
    reply = add(staff, **fields)
    assert reply.status_code == 302, text(reply)
    row = the_row(app)
    assert {name: row[name] for name in expected} == expected
    assert (row["currency"], row["enabled"], row["code"], row["max_uses"], row["uses"]) == ("USD", 1, None, None, 0)
    with ledger(app) as db:
        [audit] = db.execute("SELECT * FROM audit_log").fetchall()
    assert audit["what"] == "Promotion added: Ten off" and audit["area"] == "settings"


def test_the_list_says_what_each_promotion_does_and_when(app, staff):
    add(staff, name="Cart", percent="10")
    add(staff, name="Three for two", kind="bundle", scope="category", buy="3", free="1", category="Paperbacks",
        min_spend="20")
    add(staff, name="Kids", kind="amount", scope="category", amount="2", category="children's",
        starts="2026-12-07T09:00", ends="2026-12-08T00:00")
    page = text(staff.get("/staff/promotions"))
    assert "10% off the whole cart" in page
    assert "Buy 3, the cheapest 1 free: Paperbacks, on carts of $20.00 or more" in page
    assert "$2.00 off each book: Children&#39;s" in page
    assert "from 2026-12-07 09:00 to 2026-12-08 00:00" in page  # the shop's clock, not UTC
    assert page.count("any time") == 2 and 'aria-current="page">Promotions' in page


def test_amounts_in_a_currency_without_decimals_are_whole_yen(tmp_path):
    app = kiosk_app(tmp_path / "tokyo", CATALOG.replace(".00,", ",").replace("12.50", "1250"), KIOSK_CURRENCY="jpy")
    staff = signed_in(app, PIN)
    assert add(staff, kind="amount", amount="2.50").status_code == 400
    assert rows(app) == []
    assert add(staff, kind="amount", amount="500", min_spend="3000").status_code == 302
    row = the_row(app)
    assert (row["amount"], row["min_spend"], row["currency"]) == (500, 3000, "JPY")
    assert "¥500 off the whole cart" in text(staff.get("/staff/promotions"))


@pytest.mark.parametrize("fields, field, says", [
    ({"percent": "0"}, "percent", "above 0 and at most 100"),
    ({"percent": "100.5"}, "percent", "above 0 and at most 100"),
    ({"percent": "12.345"}, "percent", "at most two decimals"),
    ({"percent": "ten"}, "percent", "above 0 and at most 100"),
    ({"kind": "amount", "amount": "2.505"}, "amount", "Write the amount off in USD"),
    ({"kind": "bundle", "buy": "3", "free": "3"}, "free", "from 1 to 2"),
    ({"kind": "bundle", "buy": "1", "free": "1"}, "buy", "from 2 to 20"),
    ({"max_uses": "100"}, "max_uses", "A limit of uses needs a code"),
    ({"code": "FAIR10", "max_uses": "0"}, "max_uses", "from 1 to 1000000"),
    ({"code": "f!"}, "code", "3 to 32 letters"),
    ({"starts": "2026-12-24T18:00", "ends": "2026-12-07T09:00"}, "ends", "The end must come after the start."),
    ({"starts": "2026-12-24T18:00", "ends": "2026-12-24T18:00"}, "ends", "The end must come after the start."),
    ({"starts": "next week"}, "starts", "like 2026-12-07 09:00"),
    ({"scope": "category", "category": "Poetry"}, "category", "no category Poetry"),
    ({"scope": "category"}, "category", "Choose the category"),
    ({"scope": "books", "isbns": f"{GOOD} 9780306406158"}, "isbns", "9780306406158 is not an ISBN"),
    ({"name": ""}, "name", "Give the promotion a name"),
    ({"name": "x" * 81}, "name", "at most 80 characters"),
    ({"kind": "free"}, "kind", "Choose what the promotion does"),
    ({"min_spend": "-5"}, "min_spend", "the least the cart must come to"),
])
def test_a_refused_form_writes_nothing_and_comes_back_as_typed(app, staff, fields, field, says):
    reply = add(staff, **{"name": "Typed name", **fields})
    page = text(reply)
    assert reply.status_code == 400
    assert rows(app) == []
    assert re.search(rf'id="p-err-{field}" role="alert">[^<]*{re.escape(says)}', page, re.I), page
    assert f'name="name" type="text" value="{fields.get("name", "Typed name")}"' in page
    assert "Nothing was saved" in page


def test_a_code_another_promotion_has_is_refused_however_it_is_typed(app, staff):
    assert add(staff, name="Fair", code="fair 10", max_uses="100").status_code == 302
    reply = add(staff, name="Other", code=" FAIR10 ")
    assert reply.status_code == 400
    assert "Another promotion has that code already." in text(reply)
    assert [(r["name"], r["code"], r["max_uses"]) for r in rows(app)] == [("Fair", "FAIR10", 100)]


def test_a_promotion_added_with_a_code_runs_for_that_code(app, staff):
    assert add(staff, name="Fair", percent="10", code="fair10", max_uses="100").status_code == 302
    with ledger(app) as db:
        [running] = promotions.running(db, "usd")
        state, found = promotions.by_code(db, "FAIR10", "usd")
    assert (running.name, running.code, running.percent, running.max_uses, running.per_book) == \
        ("Fair", "FAIR10", Decimal(10), 100, False)
    assert state == "ok" and found.id == running.id
    assert "0 of 100" in text(staff.get("/staff/promotions"))


def test_a_promotion_that_starts_later_does_not_run_yet(app, staff):
    assert add(staff, starts="2098-01-01T00:00").status_code == 302
    with ledger(app) as db:
        assert promotions.running(db, "usd") == []
    assert "starts later" in text(staff.get("/staff/promotions"))


def test_switching_off_stops_it_and_an_edit_keeps_it_off(app, staff):
    add(staff)
    promotion_id = the_row(app)["id"]
    assert staff.post(f"/staff/promotions/{promotion_id}/switch", data={"enabled": "0"}).status_code == 302
    assert the_row(app)["enabled"] == 0
    with ledger(app) as db:
        assert promotions.running(db, "usd") == []
    assert "switched off" in text(staff.get("/staff/promotions"))
    page = text(staff.get(f"/staff/promotions/{promotion_id}"))
    assert "Switch it on" in page and 'value="10"' in page
    reply = staff.post(f"/staff/promotions/{promotion_id}", data={"name": "Fifteen off", "kind": "percent",
                                                                   "scope": "cart", "percent": "15"})
    assert reply.status_code == 302
    row = the_row(app)
    assert (row["name"], row["percent"], row["enabled"]) == ("Fifteen off", "15", 0)
    staff.post(f"/staff/promotions/{promotion_id}/switch", data={"enabled": "1"})
    with ledger(app) as db:
        assert [p.name for p in promotions.running(db, "usd")] == ["Fifteen off"]
        said = [r["what"] for r in db.execute("SELECT what FROM audit_log ORDER BY id")]
    assert said == ["Promotion added: Ten off", "Promotion switched off: Ten off", "Promotion changed: Fifteen off",
                    "Promotion switched on: Fifteen off"]


def test_a_refused_edit_changes_nothing(app, staff):
    add(staff)
    promotion_id = the_row(app)["id"]
    before = the_row(app)
    reply = staff.post(f"/staff/promotions/{promotion_id}", data={"name": "Ten off", "kind": "percent",
                                                                   "scope": "cart", "percent": "150"})
    assert reply.status_code == 400 and 'value="150"' in text(reply)
    assert the_row(app) == before
    assert staff.get("/staff/promotions/999").status_code == 404


def test_promotions_need_the_staff_sign_in(app):
    client = KioskClient(app)
    assert client.get("/staff/promotions").status_code == 302
    assert client.get("/staff/promotions.csv").status_code == 302
    assert client.post("/staff/promotions", data={"name": "x", "kind": "percent", "scope": "cart",
                                                  "percent": "10"}).status_code == 403
    assert rows(app) == []


GOOD_CSV = ("name,kind,scope,percent,amount,buy,free,category,isbns,min_spend,starts,ends,code,max_uses\n"
            "Fair,percent,cart,10,,,,,,,2026-12-07 09:00,2026-12-24,fair10,100\n"
            "3 for 2,bundle,category,,,3,1,paperbacks,,,,,,\n"
            f"Listed,amount,books,,1.50,,,,\"{GOOD}, {POEMS}\",5,2026-12-07,,,\n")


def test_a_csv_adds_every_row_and_another_changes_them_by_name(app, staff):
    reply = upload(staff, GOOD_CSV.encode())
    assert reply.status_code == 302, text(reply)
    found = {r["name"]: r for r in rows(app)}
    assert set(found) == {"Fair", "3 for 2", "Listed"}
    fair = found["Fair"]
    # A date alone as the end is the whole of that day: it ends at the next local midnight.
    assert (fair["percent"], fair["starts_at"], fair["ends_at"], fair["code"], fair["max_uses"]) == \
        ("10", "2026-12-07 14:00:00", "2026-12-25 05:00:00", "FAIR10", 100)
    assert (found["3 for 2"]["buy"], found["3 for 2"]["free"], found["3 for 2"]["category"]) == (3, 1, "Paperbacks")
    listed = found["Listed"]
    assert (listed["amount"], listed["isbns"], listed["min_spend"], listed["starts_at"]) == \
        (150, f"{GOOD},{POEMS}", 500, "2026-12-07 05:00:00")
    assert "3 promotions added, 0 changed" in text(staff.get("/staff/promotions"))
    staff.post(f"/staff/promotions/{fair['id']}/switch", data={"enabled": "0"})

    # With a BOM, by semicolons, a few columns in another order and an empty one a spreadsheet left.
    changed = "\ufeffscope;Name;percent;KIND;\ncart;Fair;20;percent;\n"
    assert upload(staff, changed.encode()).status_code == 302
    fair = {r["name"]: r for r in rows(app)}["Fair"]
    assert (fair["percent"], fair["code"], fair["starts_at"], fair["enabled"]) == ("20", None, None, 0)
    assert len(rows(app)) == 3


def test_a_csv_with_any_bad_row_writes_nothing_and_says_each_line_and_column(app, staff):
    bad = GOOD_CSV + ("Wrong,percent,cart,150,,,,,,,,,,\n"
                      "\n"
                      "Worse,discount,cart,10,,,,,,,,,,5\n"
                      "Fair,amount,cart,,2,,,,,,,,FAIR10,\n")
    reply = upload(staff, bad.encode())
    page = text(reply)
    assert reply.status_code == 400
    assert rows(app) == []
    assert "Line 5, percent: Write the percent off as a number above 0" in page
    assert "Line 7, kind: Choose what the promotion does" in page
    assert "Line 7, max_uses: A limit of uses needs a code" in page
    assert "Line 8, name: Line 2 has a promotion of this name already." in page
    assert "Line 8, code: Another promotion has that code already." in page
    assert "5 problems in the promotions file; nothing was saved." in page


def test_a_csv_may_not_take_the_code_of_a_promotion_it_does_not_change(app, staff):
    add(staff, name="On screen", code="FAIR10")
    reply = upload(staff, b"name,kind,scope,percent,code\nFair,percent,cart,10,fair10\n")
    assert reply.status_code == 400
    assert "Line 2, code: Another promotion has that code already." in text(reply)
    # ...but the promotion of that code may be given another one, and the code may go to a new one, in one file.
    reply = upload(staff, b"name,kind,scope,percent,code\nOn screen,percent,cart,10,OTHER\nFair,percent,cart,5,\n")
    assert reply.status_code == 302
    assert sorted((r["name"], r["code"]) for r in rows(app)) == [("Fair", None), ("On screen", "OTHER")]


@pytest.mark.parametrize("data, says", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01", "not a CSV file"),
    (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00", "not a CSV file"),
    ("name,kind,scope,percent\nCafé,percent,cart,10\n".encode("latin-1"), "not UTF-8 (line 2"),
    (b"name,kind,scope,colour\nA,percent,cart,red\n", "must name its columns"),
    (b"name,kind,percent\nA,percent,10\n", "must name its columns"),
    (b"name,name,kind,scope\n", "must name its columns"),
    (b"name,kind,scope,,percent\nA,percent,cart,5,10\n", "more cells than the first row has columns"),
    (b"", "The promotions file is empty"),
    (b"name,kind,scope\n\n\n", "has no rows under its first row"),
    (b"name,kind,scope,percent\nA,percent,cart,\"10\n" + b"x" * 200_000, "not a CSV file"),  # a quote never closed
    (("name,kind,scope,percent\n" + "".join(f"P{i},percent,cart,10\n" for i in range(501))).encode(),
     "more than 500 rows"),
    (b"name,kind,scope,percent\n" + b"#" * (1024 * 1024 + 10), "larger than 1 MB"),
])
def test_a_file_that_is_not_a_promotions_csv_gets_a_clear_error_and_writes_nothing(app, staff, data, says):
    reply = upload(staff, data)
    assert reply.status_code == 400
    assert says in text(reply)
    assert rows(app) == []


def test_an_upload_without_a_file_is_refused(app, staff):
    reply = staff.post("/staff/promotions/import", data={}, content_type="multipart/form-data")
    assert reply.status_code == 400 and "Choose a CSV file to upload." in text(reply)


def test_the_export_imports_again_as_the_same_promotions(app, staff, tmp_path):
    add(staff, name="=1+1 fair, -10%", percent="12.5", min_spend="30", starts="2026-12-07T09:00",
        ends="2026-12-24T18:00", code="fair10", max_uses="100")
    add(staff, name="Kids", kind="amount", scope="category", amount="2", category="Children's",
        starts="2026-03-08T03:30")  # the morning the clocks go forward in New York
    add(staff, name="Listed", kind="bundle", scope="books", buy="2", free="1", isbns=f"{POEMS} {GOOD}",
        ends="2026-11-01T01:30")  # the first of the two 01:30s the night the clocks go back
    staff.post(f"/staff/promotions/{rows(app)[1]['id']}/switch", data={"enabled": "0"})
    reply = staff.get("/staff/promotions.csv")
    assert reply.status_code == 200 and reply.mimetype == "text/csv"
    assert "attachment" in reply.headers["Content-Disposition"]
    body = reply.get_data()
    assert body.startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert table[0] == ["name", "kind", "scope", "percent", "amount", "buy", "free", "category", "isbns",
                        "min_spend", "starts", "ends", "code", "max_uses"]
    assert table[1] == ["'=1+1 fair, '-10%", "percent", "cart", "12.5", "", "", "", "", "", "30.00",
                        "2026-12-07 09:00", "2026-12-24 18:00", "FAIR10", "100"]  # never a formula in a spreadsheet

    other = kiosk_app(tmp_path / "back")
    assert upload(signed_in(other, PIN), body).status_code == 302
    kept = [{f: r[f] for f in FIELDS if f != "enabled"} for r in rows(app)]
    assert [{f: r[f] for f in FIELDS if f != "enabled"} for r in rows(other)] == kept
    assert [r["enabled"] for r in rows(other)] == [1, 1, 1]  # new there: switched on

    reply = upload(staff, body)  # the same file back where it came from changes nothing
    assert reply.status_code == 302
    assert [{f: r[f] for f in FIELDS} for r in rows(app)][1]["enabled"] == 0
    assert [{f: r[f] for f in FIELDS if f != "enabled"} for r in rows(app)] == kept
    assert "0 promotions added, 3 changed" in text(staff.get("/staff/promotions"))

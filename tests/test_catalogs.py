"""The languages the kiosk ships (issue #26): each catalog holds every text of messages.pot, translated, with every
plural form its language has and the same %(name)s placeholders as the English; and what setup compiled is what
the kiosk reads. A text added to the code and not translated fails here, in the language that misses it."""
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po
from babel.support import Translations

ROOT = Path(__file__).resolve().parent.parent
POT = ROOT / "translations" / "messages.pot"
SHIPPED = ("fr", "de", "es", "it", "nl", "pt", "sv", "ja")
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|%[sd]")


def catalog(path, locale=None):
    with open(path, "rb") as f:
        return read_po(f, locale=locale)


def texts(message):
    """A message's forms: (msgid,) or (singular, plural)."""
    return message.id if isinstance(message.id, tuple) else (message.id,)


def placeholders(text):
    return sorted(PLACEHOLDER.findall(text))


@pytest.fixture(scope="module")
def template():
    return {m.id: m for m in catalog(POT) if m.id}


@pytest.mark.parametrize("lang", SHIPPED)
def test_a_shipped_language_translates_every_text(lang, template, record_property):
    po = ROOT / "translations" / lang / "LC_MESSAGES" / "messages.po"
    assert po.is_file(), f"{lang}: no catalog at {po} (translations/README.md: add a language)"
    translated = catalog(po, locale=lang)
    # Every plural form the language has, as gettext counts them (Babel's table: one for Japanese, two for French).
    plurals = Catalog(locale=lang).num_plurals
    assert translated.num_plurals == plurals, f"{lang}: the catalog's Plural-Forms header says {translated.num_plurals}"
    missing, broken, done = [], [], 0
    for msgid, source in template.items():
        message = translated.get(msgid)
        strings = () if message is None else (message.string if isinstance(message.string, tuple)
                                               else (message.string,))
        if message is None or message.fuzzy or not all(strings) or \
                (isinstance(source.id, tuple) and len(strings) != plurals):
            missing.append(texts(source)[0])
            continue
        done += 1
        expected = placeholders(texts(source)[-1])
        for string in strings:
            if placeholders(string) != expected and placeholders(string) != placeholders(texts(source)[0]):
                broken.append(f"{texts(source)[0]!r} -> {string!r}")
    record_property(f"kiosk catalog {lang}", f"{done} of {len(template)} texts translated")
    assert not missing, f"{lang}: {len(missing)} of {len(template)} texts untranslated, e.g. {missing[:5]}"
    assert not broken, f"{lang}: placeholders changed in {broken[:5]}"


@pytest.mark.parametrize("lang", SHIPPED)
def test_what_setup_compiled_is_what_the_kiosk_reads(lang, template):
    mo = ROOT / "translations" / lang / "LC_MESSAGES" / "messages.mo"
    po = mo.with_suffix(".po")
    assert mo.is_file() and mo.stat().st_mtime >= po.stat().st_mtime, \
        f"{lang}: {mo} is missing or older than its .po: run scripts/setup.sh (pybabel compile)"
    compiled = Translations.load(str(ROOT / "translations"), [lang])
    for msgid in ("Add to cart", "Your cart"):
        assert msgid in template, msgid
        assert compiled.ugettext(msgid) != msgid, f"{lang}: {msgid!r} is not translated in the compiled catalog"


@pytest.mark.parametrize("lang", SHIPPED)
def test_no_translation_adds_a_bare_percent_sign(lang, template):
    """Flask-Babel formats every template text with %, placeholders or not: a '%' its English lacks (税率（%）)
    would fail the page."""
    translated = catalog(ROOT / "translations" / lang / "LC_MESSAGES" / "messages.po", locale=lang)
    def loose(text):  # a % left once placeholders and %% are taken out
        return "%" in re.sub(r"%\(\w+\)[sd]|%%|%[sd]", "", text or "")

    added = [(m.id, string) for m in translated if m.id in template
             for string in (m.string if isinstance(m.string, tuple) else (m.string,))
             if loose(string) and not loose(texts(template[m.id])[0])]
    assert not added, f"{lang}: a bare % in {added[:3]}"

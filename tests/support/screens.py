"""What makes a kiosk screen wrong at a given size, checked in Chromium: a control off the glass, text clipped,
a target under 48 px, the focused field under the on-screen keyboard, and axe-core's serious or critical findings.

`SIZES` are the three screens a shop buys (issue #25); `problems(page)` lists what is wrong on the page as it
is now (an empty list is a pass), so one test can walk a journey and check each screen at each size."""

# name -> Playwright viewport: a landscape monitor, a portrait stand, a ten-inch tablet
SIZES = {
    "landscape 1920x1080": {"width": 1920, "height": 1080},
    "portrait 1080x1920": {"width": 1080, "height": 1920},
    "tablet 1280x800": {"width": 1280, "height": 800},
}

CONTROLS = ("a[href], button, select, input:not([type=hidden]), textarea, [role=button], "
            "[tabindex]:not([tabindex=\"-1\"])")

# Controls a finger must hit: at least 48 x 48 CSS px (WCAG 2.5.5's target size, Material's touch target).
SMALL_TARGETS = """(controls) => [...document.querySelectorAll(controls)]
  .filter(el => !el.closest('[data-stripe-double], .sr-only') && !el.classList.contains('skip'))
  .filter(el => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
                  return r.width > 0 && r.height > 0 && s.visibility !== 'hidden'; })
  .filter(el => { const r = el.getBoundingClientRect(); return r.width < 48 || r.height < 48; })
  .map(el => el.outerHTML.slice(0, 120) + ' ' + Math.round(el.getBoundingClientRect().width) + 'x'
             + Math.round(el.getBoundingClientRect().height))"""

# Anything visible that no scrolling brings onto the glass: wider than the page (a horizontal scroll bar is
# itself a fault on a kiosk), or fixed/sticky and outside the viewport. Below the fold is fine: the page scrolls.
OFF_SCREEN = """() => {
  const W = document.documentElement.clientWidth, H = window.innerHeight, out = [];
  if (document.documentElement.scrollWidth > W + 1) out.push('the page scrolls sideways: ' +
      document.documentElement.scrollWidth + ' px wide in ' + W);
  for (const el of document.body.querySelectorAll('*')) {
    // The skip link waits off the glass until it has the focus (then it comes on): that is by design.
    if (el.closest('.sr-only, [hidden], [data-stripe-double] *') ||
        (el.matches('.skip') && el !== document.activeElement)) continue;
    const s = getComputedStyle(el), r = el.getBoundingClientRect();
    if (s.display === 'none' || s.visibility === 'hidden' || r.width === 0 || r.height === 0) continue;
    const fixed = s.position === 'fixed' || s.position === 'sticky';
    if (r.right > W + 1 || r.left < -1 || (fixed && (r.bottom > H + 1 || r.top < -1)))
      out.push('off the screen: ' + el.outerHTML.slice(0, 100) + ' at ' + [r.left, r.top, r.right, r.bottom]
               .map(Math.round).join(','));
  }
  return out.slice(0, 10);
}"""

# Text cut off: an element that hides its overflow (or ellipsizes) and holds more than it shows.
CLIPPED = """() => [...document.body.querySelectorAll('*')]
  .filter(el => !el.closest('.sr-only, [hidden], [data-stripe-double]'))
  .filter(el => { const s = getComputedStyle(el);
                  return s.display !== 'none' && s.visibility !== 'hidden' &&
                         (['hidden', 'clip'].includes(s.overflowX) || ['hidden', 'clip'].includes(s.overflowY)); })
  .filter(el => el.textContent.trim() && !el.matches('img, svg, video, iframe'))
  .filter(el => el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1)
  .filter(el => !el.matches('.clamp'))  // marked as a deliberate line clamp, with the full text elsewhere
  .map(el => 'clipped: ' + el.outerHTML.slice(0, 100) + ' shows ' + el.clientWidth + 'x' + el.clientHeight +
             ' of ' + el.scrollWidth + 'x' + el.scrollHeight)"""

# The focused field and the on-screen keyboard (#osk) must not overlap, and the field must be on the glass.
UNDER_KEYBOARD = """() => {
  const osk = document.getElementById('osk'), el = document.activeElement;
  if (!osk || osk.hidden || !el || el === document.body) return [];
  const k = osk.getBoundingClientRect(), r = el.getBoundingClientRect();
  const out = [];
  if (r.bottom > k.top + 1 && r.top < k.bottom - 1) out.push('the keyboard covers the focused ' +
      el.outerHTML.slice(0, 80) + ': field ' + Math.round(r.top) + '-' + Math.round(r.bottom) +
      ', keyboard from ' + Math.round(k.top));
  if (r.top < 0 || r.bottom > window.innerHeight) out.push('the focused field is off the glass: ' +
      el.outerHTML.slice(0, 80));
  return out;
}"""

AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                      nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
}"""


def serious_axe(page):
    """axe-core's serious and critical violations on the page (the page's context must load axe: the `axe`
    fixture of tests/e2e_experience)."""
    return [v for v in page.evaluate(AXE_RUN) if v["impact"] in ("serious", "critical")]


def problems(page, *, axe=True, targets=True):
    """Everything wrong with the screen as shown now, as readable strings; [] when it is right."""
    page.wait_for_load_state("load")
    found = page.evaluate(OFF_SCREEN) + page.evaluate(CLIPPED) + page.evaluate(UNDER_KEYBOARD)
    if targets:
        found += [f"target under 48 px: {t}" for t in page.evaluate(SMALL_TARGETS, CONTROLS)]
    if axe:
        found += [f"axe {v['impact']} {v['id']}: {v['help']} at {v['nodes']}" for v in serious_axe(page)]
    return found

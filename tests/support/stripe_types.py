"""Which options Stripe.js of the kiosk's release train defines, read from Stripe's published types.

@stripe/stripe-js (tests/node, pinned to the train of kiosk.payments.STRIPE_JS_URL) ships the TypeScript types of
that train's options. Rather than copy lists of names by hand, `train_options()` asks the TypeScript compiler
installed beside it: a probe file assigns each option type's keys (every member of a union, every overload of
confirmPayment, inherited and intersected members included) to a type they cannot match, and the names are read
back from the errors tsc prints. The Stripe.js double (tests/stripejs/stripe-endive.js) refuses any other option
with an IntegrationError, as Stripe.js of that train does; the contract test checks the page's calls with them.
"""
import functools
import json
import os
import re
import subprocess
import tempfile

from tests.support.settings import ROOT

NODE = ROOT / "tests" / "node"
PACKAGE = NODE / "node_modules" / "@stripe" / "stripe-js"
TSC = NODE / "node_modules" / ".bin" / "tsc"

# name -> the type whose option names it lists (type names as @stripe/stripe-js exports them).
PROBES = {
    # stripe.elements(options): both forms, with a clientSecret or in deferred mode (elements-group.d.ts).
    "elements": "Keys<StripeElementsOptions>",
    # elements.update(options) (elements-group.d.ts).
    "elementsUpdate": "Keys<StripeElementsUpdateOptions>",
    # elements.create("payment", options) and paymentElement.update(options) (elements/payment.d.ts).
    "paymentElement": "Keys<StripePaymentElementOptions>",
    "paymentElementUpdate": "Keys<StripePaymentElementUpdateOptions>",
    # stripe.confirmPayment(options), every overload (stripe.d.ts), and its confirmParams (payment-intents.d.ts).
    "confirmPayment": "Keys<Args<Stripe['confirmPayment']>>",
    "confirmParams": "Keys<ConfirmPaymentData>",
}

PROBE_HEAD = """\
import type {ConfirmPaymentData, Stripe, StripeElementsOptions, StripeElementsUpdateOptions,
  StripePaymentElementOptions, StripePaymentElementUpdateOptions} from "@stripe/stripe-js";
// Every key of every member of a union.
type Keys<T> = T extends unknown ? keyof T & string : never;
// The argument of every overload (up to eight; a function with fewer repeats its own).
type Args<F> = F extends {
  (a: infer A1): any; (a: infer A2): any; (a: infer A3): any; (a: infer A4): any;
  (a: infer A5): any; (a: infer A6): any; (a: infer A7): any; (a: infer A8): any;
} ? A1 | A2 | A3 | A4 | A5 | A6 | A7 | A8 : never;
"""


def _missing():
    return AssertionError(f"{PACKAGE} or {TSC} is missing: run scripts/setup.sh --dev (npm ci in tests/node)")


def release_train():
    """The release train @stripe/stripe-js loads (its dist/index.mjs RELEASE_TRAIN), e.g. "endive"."""
    loader = PACKAGE / "dist" / "index.mjs"
    if not loader.is_file():
        raise _missing()
    return re.search(r"RELEASE_TRAIN = '(\w+)'", loader.read_text()).group(1)


@functools.cache
def train_options():
    """{probe name: sorted option names} for the installed @stripe/stripe-js, as PROBES lists them."""
    if not (PACKAGE.is_dir() and TSC.exists()):
        raise _missing()
    lines = [PROBE_HEAD]
    first = PROBE_HEAD.count("\n") + 1
    names = list(PROBES)
    for name in names:
        lines.append(f"export const {name}: {{probe: 0}} = null! as {{probe: {PROBES[name]}}};\n")
    with tempfile.TemporaryDirectory() as tmp:
        os.symlink(NODE / "node_modules", os.path.join(tmp, "node_modules"))
        with open(os.path.join(tmp, "probe.ts"), "w", encoding="utf-8") as f:
            f.write("".join(lines))
        done = subprocess.run(
            [str(TSC), "--noEmit", "--strict", "--noErrorTruncation", "--pretty", "false", "--target", "es2022",
             "--lib", "es2022,dom", "--module", "esnext", "--moduleResolution", "bundler", "--types", "",
             "probe.ts"], cwd=tmp, capture_output=True, text=True, timeout=120, check=False)
    found = {}
    for match in re.finditer(r"^probe\.ts\((\d+),\d+\): error TS2322: Type '\{ probe: (.*); \}' is not assignable",
                             done.stdout, re.M):
        index = int(match.group(1)) - first
        found[names[index]] = sorted({json.loads(s) for s in re.findall(r'"[^"]*"', match.group(2))})
    if sorted(found) != sorted(names) or not all(found.values()):
        raise AssertionError(f"could not read Stripe.js's option names from tsc:\n{done.stdout}{done.stderr}")
    return found

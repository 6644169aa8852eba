"""`python -m kiosk`: run the kiosk, serve it headless, or check its setup."""
import argparse
import logging
import os
import sys

from kiosk import StartupError, create_app
from kiosk.admin.configure import first_run_open
from kiosk.core.config import load_settings
from kiosk.core.logs import setup_logging
from kiosk.window.launcher import WindowUnavailable, close_splash, load_webview
from kiosk.window.launcher import run as run_window


def parse_args(argv):
    """The command line."""
    parser = argparse.ArgumentParser(prog="kiosk", description="The book-counter kiosk.")
    parser.add_argument("--headless", action="store_true", help="serve on 127.0.0.1 over plain HTTP, without a window")
    parser.add_argument("--port", type=int, default=0, help="port for --headless (default: 8000)")
    parser.add_argument("--check", action="store_true", help="check configuration, Stripe and catalog, then exit")
    return parser.parse_args(argv)


LIVE_ON_HTTP = ("live Stripe keys need HTTPS, and headless mode serves plain HTTP (Stripe.js refuses live keys "
                "on HTTP pages). Start the kiosk window instead (without --headless), or use test keys for "
                "development.")


def report_problems(settings):
    """Print configuration problems so staff see them in the terminal too."""
    for problem in settings.problems:
        kind = "ERROR" if problem.fatal else "WARNING" if problem.warning else "setup"
        print(f"[kiosk] {kind}: {problem}", file=sys.stderr)


def setup_hint(settings, headless):
    """How to set up payments, for whoever started the kiosk (None once they are): on the kiosk's own screen, never
    by editing a file and starting again."""
    if settings.payments_ready:
        return None
    meanwhile = "payments are not set up: customers can browse, and are asked to pay at the counter."
    if first_run_open(settings):
        where = ("open the set-up address below (it carries this launch's screen key)" if headless else
                 "press Staff in the corner of the kiosk window")
        return f"{meanwhile} To take cards, {where}: Set up this kiosk asks for the shop, the Stripe keys and a PIN."
    if settings.has_pin:
        return f"{meanwhile} To take cards, sign in to the staff area and, in Settings, enter the Stripe keys (or " \
            "correct the setting named above)."
    return None  # keys but no PIN: the problems above, and the staff area, say how to set the PIN first


def cannot_start(reason):
    """Say in the terminal and the log why the kiosk does not start; returns the exit code."""
    close_splash()
    print(f"[kiosk] cannot start: {reason}", file=sys.stderr)
    logging.getLogger("kiosk").error("cannot start: %s", reason)
    return 2


def no_window(exc):
    """Say why the window cannot open, and that the shop is served headless instead (README: Starting)."""
    print(f"[kiosk] {exc}\n[kiosk] serving headless instead.", file=sys.stderr)
    logging.getLogger("kiosk").warning("no window, serving headless: %s", exc)


def serve(app, port):
    """Serve the app on 127.0.0.1 with waitress until interrupted."""
    from kiosk.window.serving import headless_server

    server = headless_server(app, port)
    kiosk = app.extensions["kiosk"]
    address = f"http://127.0.0.1:{server.effective_port}/"
    print(f"[kiosk] serving {kiosk.settings.shop_name} at {address}", flush=True)
    # Only here, for whoever started the kiosk: the browser that opens this address is the kiosk's screen (the
    # first-run form takes saves from it alone, and others' wrong PINs never lock it out), as any program on the
    # computer can reach 127.0.0.1. Never logged: the log outlives this launch.
    hint = setup_hint(kiosk.settings, headless=True)
    if hint:
        print(f"[kiosk] {hint}", flush=True)
    what = "to set it up" if first_run_open(kiosk.settings) else "for the staff area"
    then = "/staff/setup" if first_run_open(kiosk.settings) else "/staff/"
    print(f"[kiosk] {what}, open {address.rstrip('/')}{kiosk.screen_path(then)} (this address works until the "
          "kiosk stops; keep it to yourself)", flush=True)
    close_splash()
    kiosk.start_background()
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def main(argv=None):
    """Entry point; returns the process exit code."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if os.name == "posix":
        os.umask(0o077)  # every file the kiosk makes is its user's alone (datadir.py fixes older ones)
    settings = load_settings()
    if args.check:
        close_splash()
        from kiosk.check import run_check
        return run_check(settings)
    setup_logging(settings.data_dir)
    report_problems(settings)
    if not args.headless:
        try:
            load_webview()
        except WindowUnavailable as exc:
            if settings.live_mode:
                return cannot_start(f"{exc}. {LIVE_ON_HTTP}")
            no_window(exc)
            args.headless = True
    if args.headless and settings.live_mode:
        return cannot_start(LIVE_ON_HTTP)
    try:
        app = create_app(settings)
    except StartupError as exc:
        return cannot_start(exc)
    if not args.headless:
        hint = setup_hint(settings, headless=False)
        if hint:
            print(f"[kiosk] {hint}", file=sys.stderr)
        try:
            return run_window(app)
        except WindowUnavailable as exc:  # the backend loaded, but cannot be made safe (launcher.run)
            if settings.live_mode:
                return cannot_start(f"{exc}. {LIVE_ON_HTTP}")
            no_window(exc)
    serve(app, args.port or 8000)
    return 0


if __name__ == "__main__":
    sys.exit(main())

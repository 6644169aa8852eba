"""`python -m kiosk`: run the kiosk, serve it headless, or check its setup."""
import argparse
import logging
import os
import sys

from . import StartupError, create_app
from .config import load_settings
from .launcher import WindowUnavailable, close_splash, load_webview
from .launcher import run as run_window
from .logs import setup_logging


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


def serve(app, port):
    """Serve the app on 127.0.0.1 with waitress until interrupted."""
    from .serving import headless_server

    server = headless_server(app, port)
    address = f"http://127.0.0.1:{server.effective_port}/"
    print(f"[kiosk] serving {app.extensions['kiosk'].settings.shop_name} at {address}", flush=True)
    close_splash()
    app.extensions["kiosk"].start_background()
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
        from .check import run_check
        return run_check(settings)
    setup_logging(settings.data_dir)
    report_problems(settings)
    if not args.headless:
        try:
            load_webview()
        except WindowUnavailable as exc:
            print(f"[kiosk] {exc}\n[kiosk] serving headless instead.", file=sys.stderr)
            logging.getLogger("kiosk").warning("no window, serving headless: %s", exc)
            args.headless = True
    if args.headless and settings.live_mode:
        close_splash()
        print(f"[kiosk] cannot start: {LIVE_ON_HTTP}", file=sys.stderr)
        logging.getLogger("kiosk").error("cannot start: %s", LIVE_ON_HTTP)
        return 2
    try:
        app = create_app({"SETTINGS": settings})
    except StartupError as exc:
        print(f"[kiosk] cannot start: {exc}", file=sys.stderr)
        logging.getLogger("kiosk").error("cannot start: %s", exc)
        return 2
    if not args.headless:
        return run_window(app)
    serve(app, args.port or 8000)
    return 0


if __name__ == "__main__":
    sys.exit(main())

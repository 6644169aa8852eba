"""`python -m kiosk`: run the kiosk, serve it headless, or check its setup."""
import argparse
import logging
import sys

from . import StartupError, create_app
from .config import load_settings
from .logs import setup_logging


def parse_args(argv):
    """The command line."""
    parser = argparse.ArgumentParser(prog="kiosk", description="The book-counter kiosk.")
    parser.add_argument("--headless", action="store_true", help="serve on 127.0.0.1 without a window")
    parser.add_argument("--port", type=int, default=0, help="port for --headless (default: 8000)")
    parser.add_argument("--check", action="store_true", help="check configuration, Stripe and catalog, then exit")
    return parser.parse_args(argv)


def report_problems(settings):
    """Print configuration problems so staff see them in the terminal too."""
    for problem in settings.problems:
        print(f"[kiosk] {'ERROR' if problem.fatal else 'setup'}: {problem}", file=sys.stderr)


def serve(app, port):
    """Serve the app on 127.0.0.1 with waitress until interrupted."""
    from waitress import create_server

    server = create_server(app, host="127.0.0.1", port=port, threads=8, ident="kiosk")
    address = f"http://127.0.0.1:{server.effective_port}/"
    print(f"[kiosk] serving {app.extensions['kiosk'].settings.shop_name} at {address}", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def main(argv=None):
    """Entry point; returns the process exit code."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    settings = load_settings()
    if args.check:
        from .check import run_check
        return run_check(settings)
    setup_logging(settings.data_dir)
    report_problems(settings)
    try:
        app = create_app({"SETTINGS": settings})
    except StartupError as exc:
        print(f"[kiosk] cannot start: {exc}", file=sys.stderr)
        logging.getLogger("kiosk").error("cannot start: %s", exc)
        return 2
    serve(app, args.port or 8000)
    return 0


if __name__ == "__main__":
    sys.exit(main())

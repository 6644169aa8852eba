"""The kiosk as its own process: `python -m kiosk --headless`, as staff would run it."""
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support.settings import SAMPLE

ROOT = Path(__file__).absolute().parents[2]  # not resolve(): run the tree the tests run from


def free_port():
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class KioskProcess:
    """`python -m kiosk --headless` as its own process, paying through `stripe`, its ledger in `data_dir`.

    start() waits for the first page; kill() is `kill -9`; rss_kib() reads the process's resident memory."""

    def __init__(self, data_dir, stripe, catalog=SAMPLE, **env):
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "STRIPE_SECRET_KEY": stripe.sk, "STRIPE_PUBLISHABLE_KEY": stripe.pk,
                    "STRIPE_API_BASE": stripe.url, "KIOSK_DATA_DIR": str(self.data_dir),
                    "KIOSK_CATALOG": str(catalog), "KIOSK_ENV_FILE": str(self.data_dir / "no.env"),
                    "PYTHONDONTWRITEBYTECODE": "1", **env}
        self.proc = None
        self.starts = 0
        # Where its ledger is, for the ledger helpers (tests/support/ledger.py), as an app's kiosk.ledger says it.
        self.ledger_url = self.env.get("KIOSK_DATABASE_URL") or str(self.data_dir / "kiosk.sqlite3")

    def start(self, timeout=30):
        """Start the kiosk and wait until it serves its home page."""
        self.starts += 1
        # Open for the process's life; kill() closes it.
        self.output = open(self.data_dir.parent / f"kiosk-{self.port}-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "kiosk", "--headless", "--port", str(self.port)],
                                     cwd=ROOT, env=self.env, stdout=self.output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the kiosk exited with {self.proc.returncode}: {self.log()[-2000:]}")
            try:
                if requests.get(self.url + "/", timeout=2).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"the kiosk did not answer within {timeout} s: {self.log()[-2000:]}")

    def log(self):
        """What the kiosk printed and logged so far."""
        self.output.flush()
        return Path(self.output.name).read_text(errors="replace")

    def kill(self):
        """kill -9: no shutdown code runs, as when the power goes."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        if self.proc is not None:
            self.output.close()

    def rss_kib(self):
        """Resident memory of the kiosk process, in KiB."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))

    def listening_addresses(self):
        """The local addresses of every listening socket on the kiosk's port (from /proc/net/tcp*)."""
        found = []
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, port = local.rsplit(":", 1)
                if state == "0A" and int(port, 16) == self.port:
                    found.append(address)
        return found

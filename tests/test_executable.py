"""The single executable: build dist/kiosk with build.spec, then run it headless against localstripe and windowed.

The build takes minutes, so it is skipped when dist/kiosk is newer than every source it bundles (repeated local
runs); a clean clone, as in CI, has no dist/ and always builds.
"""
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
EXE = ROOT / "dist" / ("kiosk.exe" if sys.platform == "win32" else "kiosk")
SOURCES = ["build.spec", "requirements.txt", "requirements-dev.txt", "kiosk", "webui", "sample_catalog", "translations"]


def newest_source():
    """mtime of the newest file the executable is built from."""
    times = []
    for name in SOURCES:
        path = ROOT / name
        files = [path] if path.is_file() else \
            [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        times += [p.stat().st_mtime for p in files]
    return max(times)


def build_executable(report):
    """Build dist/kiosk unless it is up to date; one build at a time across test processes."""
    (ROOT / "build").mkdir(exist_ok=True)
    with open(ROOT / "build" / ".kiosk-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if EXE.is_file() and EXE.stat().st_mtime > newest_source():
            report(f"executable: {EXE} is up to date, not rebuilt")
            return
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "build.spec"], cwd=ROOT,
                              capture_output=True, text=True, timeout=40 * 60)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
        seconds = time.monotonic() - started
        report(f"executable: built {EXE} ({EXE.stat().st_size / 2**20:.0f} MiB) in {seconds:.0f} s")


@pytest.fixture(scope="module")
def executable(request):
    """dist/kiosk, built if needed; the build time goes to the terminal and to build/kiosk-build.txt."""
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")

    def report(line):
        (ROOT / "build" / "kiosk-build.txt").write_text(line + "\n")
        if reporter and capture:
            with capture.global_and_fixture_disabled():  # past pytest's output capture, into the CI log
                reporter.ensure_newline()
                reporter.write_line(line)

    build_executable(report)
    return EXE


@pytest.fixture
def install(tmp_path, executable, stripe_server):
    """The executable as staff install it: a folder holding it, its .env and their own catalog."""
    folder = tmp_path / "kiosk"
    folder.mkdir()
    exe = folder / EXE.name
    try:
        os.link(executable, exe)  # same bytes, no 170 MB copy; sys.executable is this path
    except OSError:
        shutil.copy2(executable, exe)
    rows = (ROOT / "sample_catalog" / "books.csv").read_text(encoding="utf-8").splitlines()
    rows.insert(1, "9780000000002,The Executable Test Book,A. Builder,21.50,4,,Found beside the kiosk.,Testing")
    rows.append("not-an-isbn,Broken Row,Nobody,abc,1,,,")
    (folder / "shop-books.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (folder / ".env").write_text(
        f"STRIPE_SECRET_KEY={stripe_server.sk}\nSTRIPE_PUBLISHABLE_KEY={stripe_server.pk}\n"
        f"STRIPE_API_BASE={stripe_server.url}\nKIOSK_SHOP_NAME=Exe Test Books\nKIOSK_CATALOG=shop-books.csv\n")
    return exe


def exe_env(tmp_path, **extra):
    """No developer settings leak in; the data folder comes from platformdirs under a temporary home."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KIOSK_", "STRIPE_", "QT", "DISPLAY", "WAYLAND_DISPLAY", "_PYI", "_MEI"))}
    env.update(HOME=str(tmp_path / "home"), XDG_DATA_HOME=str(tmp_path / "xdg"), TMPDIR=str(tmp_path), **extra)
    return env


def data_dir(tmp_path):
    return tmp_path / "xdg" / "book-counter-kiosk"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check, proc, seconds, what):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if proc.poll() is not None or time.monotonic() > deadline:
            out, err = proc.communicate(timeout=30) if proc.poll() is not None else ("", "")
            pytest.fail(f"{what}: exit {proc.poll()}\n{out[-2000:]}\n{err[-4000:]}")
        time.sleep(0.2)


def stop(proc):
    """SIGTERM, as a service manager stops it; returns (exit code, stdout, stderr)."""
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err


def test_check_from_the_executable(install, tmp_path, stripe_server):
    proc = subprocess.run([str(install), "--check"], cwd=tmp_path, env=exe_env(tmp_path), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Configuration file: {install.parent / '.env'}" in proc.stdout
    assert "Configuration: valid" in proc.stdout
    assert f"Stripe: answers at {stripe_server.url}" in proc.stdout
    assert re.search(r"Catalog: .*shop-books\.csv: 25 valid rows, 1 skipped", proc.stdout), proc.stdout
    # The data folder is the user's (platformdirs), never the unpack folder.
    assert f"data folder {data_dir(tmp_path)}" in proc.stdout


def test_check_from_the_executable_fails_when_stripe_is_down(install, tmp_path):
    env_file = install.parent / ".env"
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env_file.write_text(re.sub(r"STRIPE_API_BASE=\S+", f"STRIPE_API_BASE={closed}", env_file.read_text()))
    proc = subprocess.run([str(install), "--check"], cwd=tmp_path, env=exe_env(tmp_path), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1
    assert f"Stripe: no answer from {closed}" in proc.stdout


def test_headless_executable_sells_a_book(install, tmp_path, stripe_server):
    port = free_port()
    proc = subprocess.Popen([str(install), "--headless", "--port", str(port)], cwd=tmp_path,
                            env=exe_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        http = requests.Session()

        def home():
            try:
                return http.get(base + "/", timeout=5)
            except requests.ConnectionError:
                return None

        page = wait_for(home, proc, 300, "the executable never served the shop")
        assert page.status_code == 200
        assert "Exe Test Books" in page.text and "The Executable Test Book" in page.text
        token = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
        headers = {"X-CSRFToken": token}
        added = http.post(base + "/cart/add", data={"isbn": "9780000000002", "quantity": "2"}, headers=headers)
        assert added.status_code in (200, 302, 303)
        checkout = http.get(base + "/checkout/")
        assert checkout.status_code == 200
        attempt = re.search(r'"attempt": ?"([0-9a-f]+)"', checkout.text).group(1)
        intent = http.post(base + "/checkout/intent", json={"attempt": attempt}, headers=headers)
        assert intent.status_code == 200, intent.text
        secret = intent.json()["clientSecret"]
        pi = stripe_server.client().v1.payment_intents.retrieve(secret.split("_secret_")[0])
        assert pi.amount == 4300 and pi.currency == "usd"
        assert "Exe Test Books" in pi.description
    finally:
        code, _out, err = stop(proc)
    assert code in (0, -signal.SIGTERM), err[-3000:]  # headless waitress simply ends on SIGTERM
    data = data_dir(tmp_path)
    assert (data / "kiosk.sqlite3").is_file()
    assert "Traceback" not in (data / "logs" / "kiosk.log").read_text()
    assert not list(tmp_path.glob("_MEI*")), "the unpack folder was left behind"


def test_windowed_executable_loads_the_shop(install, tmp_path):
    env = exe_env(tmp_path, QT_QPA_PLATFORM="offscreen", QTWEBENGINE_DISABLE_SANDBOX="1")
    proc = subprocess.Popen([str(install)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    log = data_dir(tmp_path) / "logs" / "kiosk.log"
    try:
        line = wait_for(lambda: log.is_file() and re.search(r"window loaded (https://127\.0\.0\.1:\d+/)",
                                                            log.read_text()), proc, 300,
                        "the executable's window never loaded the shop")
        assert line.group(1).startswith("https://")
    finally:
        code, _out, err = stop(proc)
    assert code == 0, err[-3000:]
    text = log.read_text()
    assert "exit confirmed" in text and "kiosk window closed" in text
    assert "could not find the translation file" not in err
    assert not list(tmp_path.glob("_MEI*")), "the unpack folder was left behind"

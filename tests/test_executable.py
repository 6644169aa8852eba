"""The single executable: build dist/kiosk with build.spec, then run it headless against localstripe and windowed.

On Linux dist/kiosk is packaging/kstub.c's launcher with the one-folder build appended (packaging/pack.py): it
unpacks once per build into the user's cache folder and runs the kiosk from there. Every test here shares one
temporary XDG_CACHE_HOME (`shared_cache`), so the build is unpacked once per run; the tests of the cache itself
(damage, races, permissions) use caches of their own.

The build takes minutes, so it is skipped when dist/kiosk is newer than every source it bundles (repeated local
runs); a clean clone, as in CI, has no dist/ and always builds.
"""
import fcntl
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
EXE = ROOT / "dist" / ("kiosk.exe" if sys.platform == "win32" else "kiosk")
SOURCES = ["build.spec", "packaging", "requirements.txt", "requirements-dev.txt", "kiosk", "webui", "sample_catalog",
           "translations"]
sys.path.insert(0, str(ROOT / "packaging"))
import pack  # noqa: E402 - packaging/pack.py: reads the build hash from the trailer

from tests.window.procfs import descendants, mapped_libraries  # noqa: E402 - after packaging/ joins the path
from tests.window.xscreen import start_xvfb, stop_xvfb  # noqa: E402


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
        os.link(executable, exe)  # same bytes, no copy; sys.executable is this path
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


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """XDG_CACHE_HOME for every test of this module that does not test the cache itself: unpacked once."""
    return tmp_path_factory.mktemp("kiosk-cache")


def exe_env(tmp_path, cache, **extra):
    """No developer settings leak in; the data folder comes from platformdirs under a temporary home."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KIOSK_", "STRIPE_", "PYWEBVIEW_", "WEBKIT_", "DISPLAY", "WAYLAND_DISPLAY", "_PYI",
                                "_MEI", "XDG_"))}
    env.update(HOME=str(tmp_path / "home"), XDG_DATA_HOME=str(tmp_path / "xdg"), XDG_CACHE_HOME=str(cache),
               TMPDIR=str(tmp_path), **extra)
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


def test_check_from_the_executable(install, tmp_path, shared_cache, stripe_server):
    proc = subprocess.run([str(install), "--check"], cwd=tmp_path, env=exe_env(tmp_path, shared_cache),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Configuration file: {install.parent / '.env'}" in proc.stdout
    assert "Configuration: valid" in proc.stdout
    assert f"Stripe: answers at {stripe_server.url}" in proc.stdout
    assert re.search(r"Catalog: .*shop-books\.csv: 25 valid rows, 1 skipped", proc.stdout), proc.stdout
    # The data folder is the user's (platformdirs), never the unpack folder.
    assert f"data folder {data_dir(tmp_path)}" in proc.stdout


def test_check_from_the_executable_fails_when_stripe_is_down(install, tmp_path, shared_cache):
    env_file = install.parent / ".env"
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env_file.write_text(re.sub(r"STRIPE_API_BASE=\S+", f"STRIPE_API_BASE={closed}", env_file.read_text()))
    proc = subprocess.run([str(install), "--check"], cwd=tmp_path, env=exe_env(tmp_path, shared_cache),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert f"Stripe: no answer from {closed}" in proc.stdout


def test_headless_executable_sells_a_book(install, tmp_path, shared_cache, stripe_server):
    port = free_port()
    proc = subprocess.Popen([str(install), "--headless", "--port", str(port)], cwd=tmp_path,
                            env=exe_env(tmp_path, shared_cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
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


def system_stack():
    """File names of the system's WebKitGTK and GTK and every library they load (ldd lists the closure)."""
    names = set()
    for library in ("libwebkit2gtk-4.1.so.0", "libgtk-3.so.0"):
        [path] = [p for p in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib") if Path(p, library).exists()][:1]
        out = subprocess.run(["ldd", str(Path(path, library))], capture_output=True, text=True, check=True).stdout
        names |= {line.split()[0].rsplit("/", 1)[-1] for line in out.splitlines() if line.strip()}
        names.add(library)
    return names


def test_windowed_executable_loads_the_shop_on_the_systems_webkit(install, tmp_path, shared_cache):
    """The window opens from the executable; WebKit's helper processes load nothing from the bundle, and the
    kiosk's own process takes every library of the system's GTK and WebKit from the system."""
    xvfb, display = start_xvfb()
    env = exe_env(tmp_path, shared_cache, DISPLAY=display)
    proc = subprocess.Popen([str(install)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    log = data_dir(tmp_path) / "logs" / "kiosk.log"
    bundle = str(build_folder(install, shared_cache))
    try:
        line = wait_for(lambda: log.is_file() and re.search(r"window loaded (https://127\.0\.0\.1:\d+/)",
                                                            log.read_text()), proc, 300,
                        "the executable's window never loaded the shop")
        assert line.group(1).startswith("https://")
        helpers = {pid: Path(f"/proc/{pid}/comm").read_text().strip() for pid in descendants(proc.pid)}
        # (/proc's comm is the program's name cut to 15 characters)
        assert sorted(set(helpers.values())) == ["WebKitNetworkPr", "WebKitWebProces"], helpers
        for pid, name in helpers.items():
            environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace").split("\0")
            # No path into the bundle (LD_LIBRARY_PATH above all); PyInstaller's own bookkeeping (_PYI_*) is read
            # by PyInstaller programs only.
            assert not [v for v in environ if bundle in v and not v.startswith("_PYI_")], name
            assert not [path for path in mapped_libraries(pid) if path.startswith(bundle)], name
        mine = mapped_libraries(proc.pid)
        from_bundle = {Path(path).name for path in mine if path.startswith(bundle)}
        assert from_bundle and "libpython3.11.so.1.0" in from_bundle  # the bundle's own Python
        assert not from_bundle & system_stack(), "the bundle's copies shared the process with the system's GTK"
        for library in ("libgtk-3.so.0", "libwebkit2gtk-4.1.so.0", "libglib-2.0.so.0", "libstdc++.so.6"):
            # (mapped under the file's real name: libgtk-3.so.0.2406.32)
            assert [path for path in mine if Path(path).name.startswith(library) and path.startswith(("/usr/", "/lib"))
                    and not path.startswith(bundle)], library
    finally:
        code, _out, err = stop(proc)
        stop_xvfb(xvfb)
    assert code == 0, err[-3000:]
    text = log.read_text()
    assert "exit confirmed" in text and "kiosk window closed" in text
    assert "could not find the translation file" not in err
    assert not list(tmp_path.glob("_MEI*")), "the unpack folder was left behind"


def test_the_bundle_carries_no_gtk_of_its_own(executable):
    """GTK's typelibs, GIO modules, icons, themes and libraries are the system's: none is in the one-folder build."""
    folder = ROOT / "dist" / "kiosk-onefolder"
    names = {p.name for p in folder.rglob("*")}
    assert not names & system_stack()
    assert not [p for p in folder.rglob("*") if p.suffix == ".typelib" or p.name in ("gio_modules", "gi_typelibs")]
    assert (folder / "_internal" / "gi").is_dir()  # PyGObject itself is bundled: it is Python, not the system's


# ---- the single file's launcher (packaging/kstub.c): the cache it unpacks into ----

APP_DIR = "book-counter-kiosk"


def launch(exe, tmp_path, cache, *args, **env):
    """Run the single file to the end (default `--help`: Python starts, argparse answers, nothing else)."""
    return subprocess.run([str(exe), *(args or ["--help"])], cwd=tmp_path, env=exe_env(tmp_path, cache, **env),
                          capture_output=True, text=True, timeout=300)


def build_folder(exe, cache):
    """Where `exe` unpacks: <cache>/book-counter-kiosk/<the SHA-256 in its trailer>."""
    return cache / APP_DIR / pack.read_trailer(exe)[2]


def started(proc):
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "usage: kiosk" in proc.stdout


def tree(folder):
    """Every path under `folder`, relative; symlinks not followed."""
    return {str(Path(root, name).relative_to(folder)) for root, dirs, files in os.walk(folder) for name in dirs + files}


def snapshot(folder):
    """What changes when a folder is unpacked again: its inode, and its marker's inode and time."""
    marker = (folder / ".kiosk-complete").stat()
    return folder.stat().st_ino, marker.st_ino, marker.st_mtime_ns


def test_the_single_file_unpacks_once_per_build_and_reuses_it(install, tmp_path, shared_cache):
    offset, size, sha = pack.read_trailer(install)
    assert offset + size + pack.TRAILER.size == install.stat().st_size
    assert offset < 1_000_000, "the launcher stub should be small; the rest is the payload"
    started(launch(install, tmp_path, shared_cache))
    folder = build_folder(install, shared_cache)
    assert (folder / "kiosk").is_file() and (folder / "_internal").is_dir()
    # One build, nothing half unpacked beside it; the marker lists every entry unpacked.
    assert sorted(p.name for p in (shared_cache / APP_DIR).iterdir()) == [".lock", sha]
    lines = (folder / ".kiosk-complete").read_text().splitlines()
    assert lines[0] == f"kstub 1 {sha}" and lines[-1] == f"end {len(lines) - 2}"
    listed = {line.split(" ", 2)[2] for line in lines[1:-1]}
    assert listed == tree(ROOT / "dist" / "kiosk-onefolder") and len(listed) == len(lines) - 2
    assert listed <= tree(folder)
    before = snapshot(folder)
    started(launch(install, tmp_path, shared_cache))
    assert snapshot(folder) == before, "the second launch unpacked again instead of reusing the folder"


def test_the_cache_is_the_users_alone(install, tmp_path, shared_cache):
    started(launch(install, tmp_path, shared_cache))
    app, folder = shared_cache / APP_DIR, build_folder(install, shared_cache)
    for path in (app, folder):
        st = path.stat()
        assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.geteuid(), path
    for path in [folder, *folder.rglob("*")]:
        st = path.lstat()
        assert st.st_uid == os.geteuid(), path
        if not stat.S_ISLNK(st.st_mode):
            assert not st.st_mode & 0o077, f"{path} is open to other users ({stat.filemode(st.st_mode)})"


def test_a_cache_folder_others_could_write_is_made_private_and_unpacked_again(install, tmp_path):
    cache = tmp_path / "cache"
    started(launch(install, tmp_path, cache))
    app, folder = cache / APP_DIR, build_folder(install, cache)
    before = snapshot(folder)
    app.chmod(0o777)
    folder.chmod(0o777)  # anyone could have swapped a file in: not trusted, unpacked again
    started(launch(install, tmp_path, cache))
    assert stat.S_IMODE(app.stat().st_mode) == 0o700 and stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert snapshot(folder)[0] != before[0]
    assert sorted(p.name for p in app.iterdir()) == [".lock", folder.name]


def test_a_cache_folder_of_another_user_is_refused(install, tmp_path):
    cache = tmp_path / "cache"
    app = cache / APP_DIR
    app.mkdir(parents=True)
    if os.geteuid() == 0:
        os.chown(app, 65534, 65534)  # nobody's
        proc = launch(install, tmp_path, cache)
        assert proc.returncode == 70 and "belongs to another user" in proc.stderr, proc.stderr
        assert list(app.iterdir()) == []
    app.rmdir()
    app.symlink_to(tmp_path)  # a link to a folder elsewhere is not the cache folder either
    proc = launch(install, tmp_path, cache)
    assert proc.returncode == 70 and "is not a folder" in proc.stderr, proc.stderr
    assert not (tmp_path / pack.read_trailer(install)[2]).exists()


def test_a_damaged_or_partial_unpack_is_replaced(install, tmp_path):
    cache = tmp_path / "cache"
    started(launch(install, tmp_path, cache))
    folder = build_folder(install, cache)
    library = folder / "_internal" / "base_library.zip"  # Python's standard library: no start without it
    size = library.stat().st_size
    with open(library, "r+b") as f:
        f.truncate(size // 2)
    before = snapshot(folder)
    started(launch(install, tmp_path, cache))
    assert library.stat().st_size == size and snapshot(folder) != before

    (folder / ".kiosk-complete").unlink()  # as if the power went while it was unpacking
    started(launch(install, tmp_path, cache))
    assert (folder / ".kiosk-complete").is_file()

    (folder / "kiosk").unlink()
    (cache / APP_DIR / ".tmp-0123456789abcdef-AbCdEf").mkdir()  # left by an interrupted unpack
    started(launch(install, tmp_path, cache))
    assert sorted(p.name for p in (cache / APP_DIR).iterdir()) == [".lock", folder.name]


def test_two_first_launches_at_once_both_start(install, tmp_path):
    cache = tmp_path / "cache"
    env = exe_env(tmp_path, cache)
    procs = [subprocess.Popen([str(install), "--help"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and "usage: kiosk" in out, err[-3000:]
    folder = build_folder(install, cache)
    assert sorted(p.name for p in (cache / APP_DIR).iterdir()) == [".lock", folder.name]
    before = snapshot(folder)
    started(launch(install, tmp_path, cache))
    assert snapshot(folder) == before


# Small stand-in builds, packed by packaging/pack.py with the same stub: the kiosk program is a shell script that
# prints what it was started with, so the launcher's own behaviour is seen directly, in milliseconds.

@pytest.fixture(scope="module")
def stub(executable, tmp_path_factory):
    return pack.compile_stub(tmp_path_factory.mktemp("stub"))


ELF_SAMPLE = Path(os.path.realpath(sys.executable))  # machine code with calls and jumps in it


def fake_build(stub, where, name, marker):
    folder = where / f"{name}-folder"
    (folder / "_internal").mkdir(parents=True)
    (folder / "_internal" / "data.txt").write_text(marker * 1000)
    (folder / "_internal" / "link.txt").symlink_to("data.txt")
    shutil.copy(ELF_SAMPLE, folder / "_internal" / "program.elf")  # stored E8/E9-filtered (tar type 'X')
    program = folder / "kiosk"
    program.write_text('#!/bin/sh\necho "env=$KIOSK_ENV_FILE"\nfor a in "$@"; do echo "arg=$a"; done\n'
                       f'echo "build={marker}"\nexit 3\n')
    program.chmod(0o755)
    install = where / name / "kiosk"
    install.parent.mkdir()
    pack.pack(folder, install, level=3, long=0, stub=stub)
    return install


def run_fake(exe, tmp_path, cache, *args, **env):
    proc = subprocess.run([str(exe), *args], cwd=tmp_path, env=exe_env(tmp_path, cache, **env), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr  # the kiosk's own exit code comes back
    return proc.stdout.splitlines()


def test_env_beside_the_single_file_and_arguments_pass_through(stub, tmp_path):
    exe = fake_build(stub, tmp_path, "shop", "a")
    cache = tmp_path / "cache"
    lines = run_fake(exe, tmp_path, cache, "--port", "two words", "")
    assert lines == [f"env={exe.parent / '.env'}", "arg=--port", "arg=two words", "arg=", "build=a"]
    # Started through a link (a desktop shortcut): .env is still the one beside the real file.
    link = tmp_path / "desktop" / "kiosk"
    link.parent.mkdir()
    link.symlink_to(exe)
    assert run_fake(link, tmp_path, cache)[0] == f"env={exe.parent / '.env'}"
    # KIOSK_ENV_FILE set by whoever starts it wins.
    assert run_fake(exe, tmp_path, cache, KIOSK_ENV_FILE="/etc/kiosk.env")[0] == "env=/etc/kiosk.env"
    folder = build_folder(exe, cache)
    assert os.readlink(folder / "_internal" / "link.txt") == "data.txt"
    assert (folder / "_internal" / "link.txt").read_text() == "a" * 1000
    assert (folder / "_internal" / "program.elf").read_bytes() == ELF_SAMPLE.read_bytes()  # the filter undone


def test_the_filter_changes_what_is_stored_and_nothing_unpacked(stub, tmp_path):
    """The E8/E9 filter is really applied in the payload (else the round trip above proves nothing)."""
    raw = ELF_SAMPLE.read_bytes()
    stored = pack.filtered(ELF_SAMPLE, stub.with_name("kstub-encode"))
    assert len(stored) == len(raw) and stored != raw and stored[:4] == b"\x7fELF"


def test_a_new_build_removes_older_ones_not_in_use(stub, tmp_path):
    old, new = fake_build(stub, tmp_path, "old", "o"), fake_build(stub, tmp_path, "new", "n")
    cache = tmp_path / "cache"
    assert run_fake(old, tmp_path, cache)[-1] == "build=o"
    old_folder, new_folder = build_folder(old, cache), build_folder(new, cache)
    assert old_folder != new_folder and old_folder.is_dir()
    assert run_fake(new, tmp_path, cache)[-1] == "build=n"
    assert sorted(p.name for p in (cache / APP_DIR).iterdir()) == [".lock", new_folder.name]
    # A kiosk still running from a folder holds a shared lock on its in-use file: that folder stays.
    with open(new_folder / ".kiosk-in-use") as running:
        fcntl.flock(running, fcntl.LOCK_SH)
        assert run_fake(old, tmp_path, cache)[-1] == "build=o"
        assert sorted(p.name for p in (cache / APP_DIR).iterdir()) == sorted([".lock", old_folder.name,
                                                                              new_folder.name])


def crafted_single_file(stub, out, links):
    """A single file whose payload pack.py would never write (it refuses links that lead out): a program and the
    given links, as a tampered file could carry them."""
    import hashlib
    import io
    import tarfile
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        program = b"#!/bin/sh\nexit 3\n"
        for name, kind, data in [("_internal", tarfile.DIRTYPE, None), ("kiosk", tarfile.REGTYPE, program),
                                 *((link, tarfile.SYMTYPE, target) for link, target in links)]:
            info = tarfile.TarInfo(name)
            info.type, info.mode = kind, 0o700
            if kind == tarfile.SYMTYPE:
                info.linkname = data
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    payload = subprocess.run(["zstd", "-q", "-c"], input=raw.getvalue(), capture_output=True, check=True).stdout
    body = stub.read_bytes()
    out.write_bytes(body + payload + pack.TRAILER.pack(pack.MAGIC, len(body), len(payload),
                                                       hashlib.sha256(payload).digest(), pack.MAGIC))
    out.chmod(0o755)
    return out


def test_a_link_leading_out_through_another_link_is_refused(stub, tmp_path):
    """Read as text, "up/../.." from _internal/ stays inside; through the link up -> .. it leads out of the folder.
    The launcher follows where each link really leads, and keeps nothing it unpacked."""
    exe = crafted_single_file(stub, tmp_path / "kiosk", [("_internal/up", ".."), ("_internal/out", "up/../..")])
    cache = tmp_path / "cache"
    proc = subprocess.run([str(exe)], cwd=tmp_path, env=exe_env(tmp_path, cache), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 70 and "unsafe link: _internal/out" in proc.stderr, proc.stderr
    assert sorted(p.name for p in (cache / APP_DIR).iterdir()) == [".lock"]  # nothing half unpacked is left
    # The same file with only links that stay inside runs, one that leads to a file the build left out included (as
    # PyInstaller's do): it goes no further than the folder it names.
    exe = crafted_single_file(stub, tmp_path / "kiosk", [("_internal/up", ".."), ("_internal/in", "up/kiosk"),
                                                         ("_internal/gone.so.6", "lib/missing.so.6")])
    assert subprocess.run([str(exe)], cwd=tmp_path, env=exe_env(tmp_path, cache), timeout=60).returncode == 3


def test_a_damaged_single_file_says_so(stub, tmp_path):
    exe = fake_build(stub, tmp_path, "shop", "a")
    data = bytearray(exe.read_bytes())
    offset, size, _ = pack.read_trailer(exe)
    data[offset + size // 2] ^= 0xFF  # one flipped bit in the payload: zstd's checksum catches it
    exe.write_bytes(bytes(data))
    cache = tmp_path / "cache"
    proc = subprocess.run([str(exe)], cwd=tmp_path, env=exe_env(tmp_path, cache), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 70 and "damaged" in proc.stderr, proc.stderr
    assert sorted(p.name for p in (cache / APP_DIR).iterdir()) == [".lock"]  # nothing half unpacked is left
    exe.write_bytes(bytes(data[: offset + size]))  # the trailer cut off, as by an interrupted copy
    proc = subprocess.run([str(exe)], cwd=tmp_path, env=exe_env(tmp_path, cache), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 70 and "copy the kiosk file again" in proc.stderr, proc.stderr

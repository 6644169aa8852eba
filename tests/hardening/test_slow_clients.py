"""Slow and idle connections from other programs on the computer: both of the kiosk's servers keep answering.

About a hundred half-sent requests used to stop the headless server (waitress stops accepting at its
connection limit and keeps half-sent requests forever), and the window's server kept every dripping
connection open for ever, a thread each. Here 150 idle connections and 20 that drip their headers stay open
while a customer's page must still come back within a second, and the drippers are cut off at the deadline.
"""
import contextlib
import http.client
import re
import socket
import ssl
import time
from types import SimpleNamespace

import pytest
import requests

from kiosk.window import serving, tls
from tests.hardening.helpers import hardening_app
from tests.support.process import KioskProcess

IDLE, DRIPPING = 150, 20


def open_idle(port, count):
    return [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]


def start_dripping(socks):
    """Send the first bytes of a request on each socket, and never finish it."""
    for sock in socks:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")


def drip(socks):
    """One more byte of an endless header on each socket still open."""
    for sock in socks:
        with contextlib.suppress(OSError):  # cut off already
            sock.sendall(b"a")


def closed_by_server(sock):
    """True when the server has hung up on this socket."""
    sock.settimeout(0.2)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def answered_within(get, seconds):
    start = time.monotonic()
    reply = get()
    elapsed = time.monotonic() - start
    assert reply.status_code == 200 and "Book Counter" in reply.text
    return elapsed


def check_server(port, get, drippers_as):
    idle = open_idle(port, IDLE)
    drippers = drippers_as(open_idle(port, DRIPPING))
    start_dripping(drippers)
    try:
        times = []
        for _ in range(3):
            drip(drippers)
            times.append(answered_within(get, 1.0))
        assert max(times) < 1.0, times
        # Past the deadline, every dripping connection is cut off, however often it sends a byte.
        deadline = time.monotonic() + serving.REQUEST_DEADLINE + 5
        while not all(closed_by_server(s) for s in drippers):
            assert time.monotonic() < deadline, "dripping connections were kept open past the request deadline"
            drip(drippers)
            time.sleep(0.5)
        assert answered_within(get, 1.0) < 1.0
        return max(times)
    finally:
        for sock in idle + drippers:
            sock.close()


def test_the_headless_server_answers_past_idle_and_dripping_connections(tmp_path, stripe_server):
    kiosk = KioskProcess(tmp_path / "data", stripe_server).start()
    try:
        worst = check_server(kiosk.port, lambda: requests.get(kiosk.url + "/", timeout=5), lambda socks: socks)
    finally:
        kiosk.kill()
    print(f"headless: home page within {worst:.3f} s beside {IDLE} idle and {DRIPPING} dripping connections")


@pytest.fixture
def window_server(tmp_path, stripe_server):
    app = hardening_app(tmp_path, stripe_server)
    certfile, keyfile = tls.write_certificate(tmp_path)
    httpd = serving.serve_https(app, certfile, keyfile)
    yield httpd, certfile
    httpd.shutdown()


def test_the_window_server_answers_past_idle_and_dripping_connections(window_server):
    httpd, certfile = window_server
    context = ssl.create_default_context(cafile=certfile)
    context.check_hostname = False

    def over_tls(socks):
        return [context.wrap_socket(s) for s in socks]

    def get():
        # The window trusts exactly this certificate (tls.py); so does this client.
        conn = http.client.HTTPSConnection("127.0.0.1", httpd.server_port, context=context, timeout=5)
        try:
            conn.request("GET", "/")
            reply = conn.getresponse()
            return SimpleNamespace(status_code=reply.status, text=reply.read().decode())
        finally:
            conn.close()

    worst = check_server(httpd.server_port, get, over_tls)
    print(f"window: home page within {worst:.3f} s beside {IDLE} idle and {DRIPPING} dripping connections")


def test_the_window_server_cuts_off_a_body_sent_a_byte_at_a_time(window_server):
    httpd, certfile = window_server
    context = ssl.create_default_context(cafile=certfile)
    context.check_hostname = False
    sock = context.wrap_socket(socket.create_connection(("127.0.0.1", httpd.server_port), timeout=5))
    sock.sendall(b"POST /cart/add HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 60000\r\n"
                 b"Content-Type: application/x-www-form-urlencoded\r\n\r\nisbn=")
    deadline = time.monotonic() + serving.REQUEST_DEADLINE + 5
    while not closed_by_server(sock):
        assert time.monotonic() < deadline, "a dripping body kept its connection past the request deadline"
        sock.sendall(b"9")
        time.sleep(0.5)
    sock.close()


def test_the_window_server_gives_an_upload_time_in_proportion_to_its_size_then_cuts_it_off(window_server):
    """Uploads (a catalog, covers) are bigger than any page's request, but dripping one is no way to hold a thread."""
    httpd, certfile = window_server
    context = ssl.create_default_context(cafile=certfile)
    context.check_hostname = False
    size = 4 * serving.BODY_RATE  # allowed REQUEST_DEADLINE + 4 s
    sock = context.wrap_socket(socket.create_connection(("127.0.0.1", httpd.server_port), timeout=5))
    sock.sendall(b"POST /staff/catalog/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n"
                 b"Content-Type: multipart/form-data; boundary=x\r\n\r\n--x" % size)
    started = time.monotonic()
    while not closed_by_server(sock):
        assert time.monotonic() - started < serving.REQUEST_DEADLINE + 4 + 5, "a dripping upload was kept open"
        sock.sendall(b"9")
        time.sleep(0.5)
    assert time.monotonic() - started > serving.REQUEST_DEADLINE  # more than a page's request gets
    sock.close()
    # One over the cap is refused at once, before a byte of it is read.
    sock = context.wrap_socket(socket.create_connection(("127.0.0.1", httpd.server_port), timeout=5))
    sock.sendall(b"POST /staff/catalog/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n"
                 % (serving.UPLOAD_CAP + 1))
    assert re.match(rb"HTTP/1\.[01] 413", sock.recv(64))
    sock.close()
    # An upload sent at once is read whole (from a temporary file) and reaches the app, which answers it.
    conn = http.client.HTTPSConnection("127.0.0.1", httpd.server_port, context=context, timeout=10)
    body = b"--x\r\n" + b"9" * (serving.BODY_MAX * 3) + b"\r\n--x--\r\n"
    conn.request("POST", "/staff/catalog/upload", body=body,
                 headers={"Content-Type": "multipart/form-data; boundary=x"})
    reply = conn.getresponse()
    assert reply.status in (302, 400, 403) and "Traceback" not in reply.read().decode()
    conn.close()

"""The kiosk's two HTTP servers, both bounded so slow or idle connections cannot freeze the kiosk.

Any program on the computer can open connections to 127.0.0.1. Unbounded, about a hundred half-sent
requests stopped the headless server (waitress accepts at most `connection_limit` connections and keeps
half-sent requests forever) and the window's server had no limit at all (a thread per connection, each
waiting forever). Here every connection has a deadline for its request line, headers and body, an idle
connection is closed after a while, and there is room for many more connections than a customer needs.
"""
import contextlib
import io
import logging
import socket
import tempfile
import threading
import time

log = logging.getLogger("kiosk.serving")

# Seconds a client may take to send a whole request (line, headers and body; the kiosk's own pages send
# theirs in milliseconds), and to stay connected without sending anything.
REQUEST_DEADLINE = 10
IDLE_TIMEOUT = 30
# Open connections at once: far more than a kiosk window or a test needs, well under the process's files.
CONNECTION_LIMIT = 512
BODY_MAX = 128 * 1024  # above Flask's MAX_CONTENT_LENGTH (64 KB), so Flask answers 413 itself
# Bigger bodies are the staff's uploads (a catalog, a covers zip: 60 MB at most, configure.MAX_UPLOAD). They get
# REQUEST_DEADLINE plus a second per BODY_RATE bytes (on 127.0.0.1 they arrive a hundred times faster), and a
# body over UPLOAD_CAP is refused before it is read.
BODY_RATE = 1024 * 1024
UPLOAD_CAP = 64 * 1024 * 1024


def headless_server(app, port, threads=8, host="127.0.0.1", ident="kiosk"):
    """A waitress server for `python -m kiosk --headless` (and the tests' live kiosks)."""
    from waitress.channel import HTTPChannel
    from waitress.server import TcpWSGIServer

    class DeadlineChannel(HTTPChannel):
        """Remembers when the request now being received began."""

        request_began = 0.0

        def received(self, data):
            if self.request is None and data:
                self.request_began = time.monotonic()
            return super().received(data)

    class BoundedServer(TcpWSGIServer):
        """Closes connections whose request takes longer than REQUEST_DEADLINE to arrive."""

        channel_class = DeadlineChannel

        def maintenance(self, now):
            super().maintenance(now)  # idle connections: channel_timeout
            cutoff = time.monotonic() - REQUEST_DEADLINE
            for channel in list(self.active_channels.values()):
                if channel.request is not None and not channel.request.completed \
                        and channel.request_began < cutoff:
                    channel.will_close = True

    # cleanup_interval: how often maintenance runs, so a deadline is kept to within a second or two. poll(), not
    # select(): select() refuses any descriptor numbered past 1,023, and a process that has opened that many files
    # and sockets (a long day, several ledgers) would stop answering with "filedescriptor out of range".
    return BoundedServer(app, host=host, port=port, threads=threads, ident=ident, connection_limit=CONNECTION_LIMIT,
                         channel_timeout=IDLE_TIMEOUT, cleanup_interval=1, clear_untrusted_proxy_headers=True,
                         asyncore_use_poll=True)


def _bounded_handler():
    from werkzeug.serving import WSGIRequestHandler

    class BoundedHandler(WSGIRequestHandler):
        """One connection of the window's server, with the same deadlines as the headless one."""

        timeout = IDLE_TIMEOUT  # any single read, the TLS handshake included (socketserver sets it)

        def handle_one_request(self):
            # The whole request (line, headers and, below, the body) must arrive before the deadline.
            self._complete = False
            self._deadline(REQUEST_DEADLINE)
            try:
                super().handle_one_request()
            finally:
                self._timer.cancel()

        def _deadline(self, seconds):
            """Cut the connection off in `seconds` unless the request has arrived whole by then."""
            if getattr(self, "_timer", None):
                self._timer.cancel()
            self._timer = threading.Timer(seconds, self._cut)
            self._timer.daemon = True
            self._timer.start()

        def _cut(self):
            if not self._complete:
                with contextlib.suppress(OSError):  # the client hung up already
                    self.connection.shutdown(socket.SHUT_RDWR)

        def run_wsgi(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                self._complete = True
                self.send_error(411, "Send a Content-Length")
                return
            length = self.headers.get("Content-Length", "")
            size = int(length) if length.isdigit() else 0
            real = self.rfile
            if size > UPLOAD_CAP:
                self._complete = True
                self.send_error(413, "Request too large")
                return
            if size > BODY_MAX:
                # An upload: more time, in proportion to its size, but still a deadline.
                self._deadline(REQUEST_DEADLINE + size / BODY_RATE)
            if size > 0:
                # Read the body under the deadline, before the app runs: a client that drips its body a byte
                # at a time is cut off instead of holding a thread.
                self.rfile = _read_body(real, size)
            self._complete = True
            try:
                super().run_wsgi()
            finally:
                self.rfile = real

    return BoundedHandler


def _read_body(stream, size):
    """The request body, read whole now: in memory up to BODY_MAX, in a temporary file above (an upload)."""
    if size <= BODY_MAX:
        return io.BufferedReader(io.BytesIO(stream.read(size)))
    body = tempfile.SpooledTemporaryFile(max_size=BODY_MAX)  # noqa: SIM115 - the request's body; closed with it
    left = size
    while left:
        chunk = stream.read(min(left, 1 << 16))
        if not chunk:
            break  # the client hung up: the app sees a short body, as it would have
        body.write(chunk)
        left -= len(chunk)
    body.seek(0)
    return body


def _limit_connections(httpd):
    """Refuse connections beyond CONNECTION_LIMIT at once (each one is a thread)."""
    slots = threading.BoundedSemaphore(CONNECTION_LIMIT)
    process, run = httpd.process_request, httpd.process_request_thread

    def process_request(request, client_address):
        if not slots.acquire(blocking=False):
            httpd.shutdown_request(request)
            return
        try:
            process(request, client_address)
        except BaseException:
            slots.release()
            raise

    def process_request_thread(request, client_address):
        try:
            run(request, client_address)
        finally:
            slots.release()

    httpd.process_request, httpd.process_request_thread = process_request, process_request_thread


def serve_https(app, certfile, keyfile, host="127.0.0.1"):
    """Serve `app` over TLS on `host` (any free port) in a thread, for the window; returns the server."""
    from werkzeug.serving import make_server

    from kiosk.window import tls

    # A threaded server: pywebview's own TLS server (ssl=True with the app as url) answers one request at a time.
    httpd = make_server(host, 0, app, threaded=True, request_handler=_bounded_handler())
    httpd.daemon_threads = True
    _limit_connections(httpd)
    context = tls.server_context(certfile, keyfile)
    # Handshake in each connection's own thread, not in accept(): a stalled client cannot block the server.
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
    httpd.ssl_context = context
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request in the kiosk log
    threading.Thread(target=httpd.serve_forever, name="kiosk-https", daemon=True).start()
    return httpd

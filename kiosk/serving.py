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

    # cleanup_interval: how often maintenance runs, so a deadline is kept to within a second or two.
    return BoundedServer(app, host=host, port=port, threads=threads, ident=ident, connection_limit=CONNECTION_LIMIT,
                         channel_timeout=IDLE_TIMEOUT, cleanup_interval=1, clear_untrusted_proxy_headers=True)


def _bounded_handler():
    from werkzeug.serving import WSGIRequestHandler

    class BoundedHandler(WSGIRequestHandler):
        """One connection of the window's server, with the same deadlines as the headless one."""

        timeout = IDLE_TIMEOUT  # any single read, the TLS handshake included (socketserver sets it)

        def handle_one_request(self):
            # The whole request (line, headers and, below, the body) must arrive before the deadline.
            self._complete = False
            timer = threading.Timer(REQUEST_DEADLINE, self._cut)
            timer.daemon = True
            timer.start()
            try:
                super().handle_one_request()
            finally:
                timer.cancel()

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
            if 0 < size <= BODY_MAX:
                # Read the body under the deadline, before the app runs: a client that drips its body a byte
                # at a time is cut off instead of holding a thread.
                self.rfile = io.BufferedReader(io.BytesIO(real.read(size)))
            self._complete = True
            try:
                super().run_wsgi()
            finally:
                self.rfile = real

    return BoundedHandler


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

    from . import tls

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

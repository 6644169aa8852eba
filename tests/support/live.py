"""A WSGI app served for real: waitress on 127.0.0.1 with a random port, in a background thread.

For tests that need the kiosk over HTTP (a browser, a window, a second process):

    with LiveServer(app) as live:
        requests.get(live.url + "/")
"""
import threading

from waitress import wasyncore

from kiosk.window.serving import headless_server


class LiveServer:
    """Serves `app` with waitress until close(); `url` is its address, like http://127.0.0.1:PORT."""

    def __init__(self, app, threads=4):
        self.app = app
        # The kiosk's own bounded server, as `python -m kiosk --headless` runs it.
        self._server = headless_server(app, 0, threads=threads, ident="kiosk-test")
        self.port = self._server.effective_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.run, name=f"waitress-{self.port}", daemon=True)
        self._thread.start()

    def close(self):
        """Stop listening, close open connections, and wait for the server thread to end."""
        if not self._thread.is_alive():
            return
        # Close every socket from inside the server's own loop (via its trigger), so the loop is never
        # polling a socket another thread closed; with its map empty the loop returns.
        self._server.trigger.pull_trigger(lambda: wasyncore.close_all(self._server._map))
        self._thread.join(10)
        self._server.task_dispatcher.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

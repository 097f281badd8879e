"""Headless Chromium for the end-to-end tests (issue 15), driven over the DevTools protocol with
websocket-client: no browser automation package, only Debian's `chromium` (scripts/test installs
it) and the real browser Socket.IO client from ../shared/clients/ (never copied into the project).

    with Chromium(tmp_path) as browser:
        page = browser.new_page("http://127.0.0.1:8000/page.html")   # its own browser context
        page.evaluate("1 + 1")                                         # -> 2
        page.evaluate("someAsyncFunction()")                           # awaits the promise
        page.screenshot(path)
"""

from __future__ import annotations

import base64
import functools
import http.server
import itertools
import json
import os
import pathlib
import shutil
import subprocess
import threading
import time

import websocket

from support import REPO, SetupError, free_port


@functools.cache
def shared_dir() -> pathlib.Path:
    """The team's ../shared folder: CHAT_SHARED_DIR, else next to this repository, else next to the
    repository this clone came from (a fresh clone in /tmp, as CI's check does)."""
    candidates = []
    if os.environ.get("CHAT_SHARED_DIR"):
        candidates.append(pathlib.Path(os.environ["CHAT_SHARED_DIR"]))
    candidates.append(REPO.parent / "shared")
    origin = subprocess.run(["git", "-C", str(REPO), "config", "--get", "remote.origin.url"],
                            capture_output=True, text=True).stdout.strip()
    if origin and not origin.startswith(("http:", "https:", "git@", "ssh:")):
        candidates.append(pathlib.Path(origin).resolve().parent / "shared")
    for candidate in candidates:
        if (candidate / "clients").is_dir():
            return candidate
    raise SetupError("the shared folder with clients/ was not found (tried "
                     + ", ".join(map(str, candidates)) + "); set CHAT_SHARED_DIR")


def socketio_client_dir() -> pathlib.Path:
    path = shared_dir() / "clients" / "socket.io-4.8.3"
    if not (path / "socket.io.min.js").is_file():
        raise SetupError(f"{path}/socket.io.min.js not found")
    return path


class StaticSite:
    """A static HTTP server on 127.0.0.1 (its own origin) serving `pages` ({name: html}) and, at
    /socket.io.min.js, the real browser client from the shared folder."""

    def __init__(self, pages: dict[str, str], host: str = "127.0.0.1"):
        client = (socketio_client_dir() / "socket.io.min.js").read_bytes()
        files = {"/" + name: (html.encode(), "text/html; charset=utf-8") for name, html in pages.items()}
        files["/socket.io.min.js"] = (client, "application/javascript")

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                body, kind = files.get(self.path.split("?")[0], (b"not found", "text/plain"))
                self.send_response(200 if self.path.split("?")[0] in files else 404)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.host = host
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, name: str) -> str:
        return f"{self.origin}/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class BrowserError(AssertionError):
    pass


class Chromium:
    """One headless Chromium process; pages in separate browser contexts (separate storage)."""

    def __init__(self, work_dir: pathlib.Path):
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        if binary is None:
            raise SetupError("chromium not found on PATH: install the Debian package chromium (scripts/test does)")
        self.profile = work_dir / "chromium-profile"
        self.profile.mkdir(parents=True, exist_ok=True)
        self.log_path = work_dir / "chromium.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-dev-shm-usage", "--disable-extensions", "--disable-background-networking",
                 "--remote-debugging-port=0", f"--user-data-dir={self.profile}", "--window-size=1280,900",
                 "about:blank"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or len(port_file.read_text().splitlines()) < 2:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise SetupError(f"chromium did not start:\n{self.log_tail()}")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=60, suppress_origin=True)
        self.ids = itertools.count(1)
        self.lock = threading.Lock()
        self.pages: list[Page] = []

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60):
        """One DevTools command; returns its result (events in between are dropped)."""
        with self.lock:
            message_id = next(self.ids)
            message = {"id": message_id, "method": method, "params": params or {}}
            if session:
                message["sessionId"] = session
            self.ws.send(json.dumps(message))
            deadline = time.monotonic() + timeout
            while True:
                self.ws.settimeout(max(0.1, deadline - time.monotonic()))
                try:
                    reply = json.loads(self.ws.recv())
                except websocket.WebSocketTimeoutException:
                    raise BrowserError(f"{method}: no answer within {timeout}s") from None
                if reply.get("id") == message_id:
                    if "error" in reply:
                        raise BrowserError(f"{method}: {reply['error']}")
                    return reply.get("result", {})

    def new_page(self, url: str = "about:blank") -> "Page":
        """A page in a fresh browser context (its own cookies and storage), loaded."""
        context = self.send("Target.createBrowserContext", {"disposeOnDetach": True})["browserContextId"]
        target = self.send("Target.createTarget", {"url": "about:blank", "browserContextId": context})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        page.send("Runtime.enable")
        page.send("Page.enable")
        if url != "about:blank":
            page.goto(url)
        self.pages.append(page)
        return page

    def close(self) -> None:
        try:
            if getattr(self, "ws", None):
                self.ws.close()
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Page:
    def __init__(self, browser: Chromium, session: str):
        self.browser = browser
        self.session = session

    def send(self, method: str, params: dict | None = None, timeout: float = 60):
        return self.browser.send(method, params, session=self.session, timeout=timeout)

    def goto(self, url: str, timeout: float = 30) -> None:
        self.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.evaluate("document.readyState === 'complete' && location.href", timeout=5) == url:
                    return
            except BrowserError:
                pass  # the old document is going away
            time.sleep(0.05)
        raise BrowserError(f"{url} did not load within {timeout}s")

    def evaluate(self, expression: str, timeout: float = 30):
        """The value of a JavaScript expression (a promise is awaited); a thrown error fails."""
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True, "timeout": int(timeout * 1000)},
                           timeout=timeout + 5)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"page error: {text}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 15, interval: float = 0.05):
        """Polls a JavaScript expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.evaluate(expression)
            if last:
                return last
            time.sleep(interval)
        raise BrowserError(f"waited {timeout}s for {expression!r}; last value {last!r}")

    def screenshot(self, path: pathlib.Path) -> None:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))

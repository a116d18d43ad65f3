"""A small Chrome DevTools Protocol client over `--remote-debugging-pipe`, for tests that must really
type and click in headless Chromium (no websocket library needed).

Chromium reads the protocol's commands from file descriptor 3 and writes its answers and events to
file descriptor 4, each message one JSON object followed by a NUL byte. `Browser` starts Chromium with
two pipes on those descriptors (a shell moves them there, so that whatever the test process has on 3
and 4 does not matter), reads the answers in a thread, and offers `send` (wait for the answer to one
command), `wait_event` and a `Page` attached to one tab with the few things the tests do: open a
URL, evaluate JavaScript, click an element, type text, press a key, take a screenshot.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-default-browser-check", "--disable-extensions", "--mute-audio")


def _above(fd: int, lowest: int) -> int:
    """`fd` moved to a descriptor number of at least `lowest`."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, lowest)
    os.close(fd)
    return moved


class ProtocolError(RuntimeError):
    """Chromium answered a command with an error, or did not answer in time."""


class Browser:
    """Headless Chromium driven over the DevTools pipe; use as a context manager."""

    def __init__(self, executable: str, profile: Path, window: tuple[int, int] = (1200, 900), timeout: float = 60):
        self.timeout = timeout
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        # The child's ends above 10, so that moving them to 3 and 4 never overwrites one with the other.
        to_browser_read, from_browser_write = (_above(to_browser_read, 10), _above(from_browser_write, 10))
        command = [executable, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}",
                   f"--window-size={window[0]},{window[1]}", "about:blank"]
        # bash (dash takes single-digit descriptors only) puts the pipe ends on 3 (Chromium reads) and
        # 4 (Chromium writes), then becomes Chromium.
        script = f'exec "$@" 3<&{to_browser_read} 4>&{from_browser_write} {to_browser_read}<&- {from_browser_write}>&-'
        self.process = subprocess.Popen(["bash", "-c", script, "bash", *command],
                                        pass_fds=(to_browser_read, from_browser_write),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._next_id = 0
        self._lock = threading.Lock()
        self._answers: dict[int, queue.Queue] = {}
        self._events: queue.Queue = queue.Queue()
        self._stderr: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self._stderr.append(self.process.stderr.read()), daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_browser, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                self._events.put(None)  # the browser went away
                for waiting in list(self._answers.values()):
                    waiting.put({"error": {"message": "Chromium closed the pipe"}})
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    with self._lock:
                        waiting = self._answers.get(message["id"])
                    if waiting is not None:
                        waiting.put(message)
                else:
                    self._events.put(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and return its result; an error answer raises ProtocolError."""
        with self._lock:
            self._next_id += 1
            ident = self._next_id
            self._answers[ident] = queue.Queue()
        message = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        try:
            answer = self._answers[ident].get(timeout=self.timeout)
        except queue.Empty:
            raise ProtocolError(f"{method}: no answer in {self.timeout} s; stderr: {self.stderr()[-1500:]}") from None
        finally:
            with self._lock:
                self._answers.pop(ident, None)
        if "error" in answer:
            raise ProtocolError(f"{method}: {answer['error'].get('message')} {answer['error'].get('data', '')}")
        return answer.get("result", {})

    def wait_event(self, method: str, session: str | None = None, timeout: float | None = None,
                   where=lambda params: True) -> dict:
        """The parameters of the next event `method` (of `session`, if given) that `where` accepts;
        events of other kinds that arrive meanwhile are dropped."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtocolError(f"no {method} event in {timeout or self.timeout} s")
            try:
                event = self._events.get(timeout=left)
            except queue.Empty:
                continue
            if event is None:
                raise ProtocolError(f"Chromium exited while waiting for {method}: {self.stderr()[-1500:]}")
            if (event.get("method") == method and (session is None or event.get("sessionId") == session)
                    and where(event.get("params", {}))):
                return event.get("params", {})

    def stderr(self) -> str:
        return b"".join(self._stderr).decode(errors="replace")

    def new_page(self) -> Page:
        """A new tab, attached, with Page and Runtime events on."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session, target)
        page.send("Page.enable")
        page.send("Runtime.enable")
        return page

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (ProtocolError, OSError):
            pass
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Page:
    """One tab of `Browser`, attached with a flat session."""

    def __init__(self, browser: Browser, session: str, target: str):
        self.browser, self.session, self.target = browser, session, target

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, self.session)

    def open(self, url: str) -> None:
        """Navigate and wait until that document has loaded."""
        self.evaluate("window.__cdp_old_document = true")
        answer = self.send("Page.navigate", {"url": url})
        if answer.get("errorText"):
            raise ProtocolError(f"{url}: {answer['errorText']}")
        self._wait_loaded()

    def reload(self) -> None:
        """Reload and wait until the new document has loaded."""
        self.evaluate("window.__cdp_old_document = true")
        self.send("Page.reload", {"ignoreCache": True})
        self._wait_loaded()

    def _wait_loaded(self) -> None:
        """Until a new document (not the one marked before navigating) has fired its load event."""
        deadline = time.monotonic() + self.browser.timeout
        while time.monotonic() < deadline:
            try:
                if self.evaluate("document.readyState === 'complete' && !window.__cdp_old_document"):
                    return
            except ProtocolError:  # the old document went away while we asked
                pass
            time.sleep(0.05)
        raise ProtocolError(f"the page did not finish loading in {self.browser.timeout} s")

    def evaluate(self, expression: str):
        """The value of a JavaScript expression (promises awaited); an exception raises ProtocolError."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise ProtocolError(f"{expression[:200]!r} raised: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element (scrolled into view first)."""
        box = self.evaluate(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            if (!e) return null; e.scrollIntoView({{block: "center"}}); const r = e.getBoundingClientRect();
            return [r.left + r.width / 2, r.top + r.height / 2]; }})()""")
        if box is None:
            raise ProtocolError(f"nothing matches {selector!r}")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1], "button": "left",
                                                   "clickCount": 1})

    def type(self, text: str) -> None:
        """Text into the focused element, as an input method would insert it."""
        self.send("Input.insertText", {"text": text})

    def press(self, key: str, shift: bool = False) -> None:
        """A key press: "Tab", "Enter", "Backspace"."""
        codes = {"Tab": 9, "Enter": 13, "Backspace": 8}
        params = {"key": key, "code": key, "windowsVirtualKeyCode": codes[key], "modifiers": 8 if shift else 0}
        text = {"Enter": "\r"}.get(key)
        self.send("Input.dispatchKeyEvent", {"type": "keyDown" if text else "rawKeyDown", **params,
                                             **({"text": text} if text else {})})
        self.send("Input.dispatchKeyEvent", {"type": "keyUp", **params})

    def screenshot(self, path: Path, width: int, height: int) -> None:
        """A PNG of the page's top `width` x `height` CSS pixels."""
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": False})
        shot = self.send("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(shot["data"]))

"""Headless Chromium driven over the DevTools protocol (CDP) with aiohttp's WebSocket client, for
the explorer page's tests: no Playwright, no Node.js.

    async with Browser.launch(path) as browser:
        page = await browser.new_page("http://127.0.0.1:PORT/explorer/")
        assert await page.eval("document.title") == "tinynode explorer"
        png = await page.screenshot()

Chromium runs with the flags the issue names (no sandbox, no GPU, no background networking or
component updates), its own throw-away profile directory, and `--remote-debugging-port=0`; the
port it picked is read from the profile's DevToolsActivePort file. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from tests.framework.wait import wait_until

FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--no-default-browser-check",
         "--disable-dev-shm-usage", "--remote-debugging-address=127.0.0.1",
         "--remote-debugging-port=0")


class CDPError(RuntimeError):
    pass


class Page:
    """One tab, attached with a flat CDP session."""

    def __init__(self, browser: "Browser", session_id: str):
        self.browser = browser
        self.session = session_id

    async def call(self, method: str, params: dict | None = None) -> dict:
        return await self.browser.call(method, params, self.session)

    async def eval(self, expression: str) -> Any:
        """The value of a JS expression (promises awaited); a JS exception raises CDPError."""
        r = await self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                  "awaitPromise": True})
        if "exceptionDetails" in r:
            raise CDPError(f"{expression}: {r['exceptionDetails'].get('exception', r['exceptionDetails'])}")
        return r["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 15.0, message: str = "") -> Any:
        """Poll until the expression is truthy; return its value."""
        async def check() -> Any:
            try:
                return await self.eval(expression)
            except CDPError:
                return None
        return await wait_until(check, timeout, interval=0.05,
                                message=message or f"never true in the page: {expression}")

    async def screenshot(self, path: Path | None = None) -> bytes:
        data = base64.b64decode((await self.call("Page.captureScreenshot", {"format": "png"}))["data"])
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return data


class Browser:
    def __init__(self, proc: subprocess.Popen, profile: Path, session: aiohttp.ClientSession,
                 ws: aiohttp.ClientWebSocketResponse):
        self.proc = proc
        self.profile = profile
        self._session = session
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    def launch(cls, executable: str) -> "_Launch":
        return _Launch(executable)

    async def _read(self) -> None:
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(msg.data)
            fut = self._pending.pop(data.get("id"), None) if "id" in data else None
            if fut is not None and not fut.done():
                if "error" in data:
                    fut.set_exception(CDPError(str(data["error"])))
                else:
                    fut.set_result(data.get("result", {}))
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(CDPError("the browser closed the DevTools connection"))

    async def call(self, method: str, params: dict | None = None, session: str | None = None,
                   timeout: float = 30.0) -> dict:
        i = next(self._ids)
        msg: dict[str, Any] = {"id": i, "method": method, "params": params or {}}
        if session is not None:
            msg["sessionId"] = session
        fut = asyncio.get_running_loop().create_future()
        self._pending[i] = fut
        await self._ws.send_str(json.dumps(msg))
        return await asyncio.wait_for(fut, timeout)

    async def new_page(self, url: str, width: int = 1200, height: int = 900) -> Page:
        target = (await self.call("Target.createTarget", {"url": "about:blank"}))["targetId"]
        sid = (await self.call("Target.attachToTarget", {"targetId": target, "flatten": True}))["sessionId"]
        page = Page(self, sid)
        await page.call("Emulation.setDeviceMetricsOverride",
                        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        await page.call("Page.enable")
        await page.call("Runtime.enable")
        await page.call("Page.navigate", {"url": url})
        return page

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.call("Browser.close"), 5)
        except (CDPError, asyncio.TimeoutError, aiohttp.ClientError, ConnectionError):
            pass
        self._reader.cancel()
        await self._ws.close()
        await self._session.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        shutil.rmtree(self.profile, ignore_errors=True)


class _Launch:
    def __init__(self, executable: str):
        self.executable = executable
        self.browser: Browser | None = None

    async def __aenter__(self) -> Browser:
        profile = Path(tempfile.mkdtemp(prefix="tn-chromium-", dir="/tmp"))
        proc = subprocess.Popen([self.executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"chromium exited with {proc.returncode}")
            return port_file.exists() and len(port_file.read_text().splitlines()) >= 2

        try:
            await wait_until(ready, 30, interval=0.05, message="chromium did not open its DevTools port")
            port, path = port_file.read_text().splitlines()[:2]
            session = aiohttp.ClientSession()
            ws = await session.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=64 * 1024 * 1024)
        except BaseException:
            proc.kill()
            proc.wait(5)
            shutil.rmtree(profile, ignore_errors=True)
            raise
        self.browser = Browser(proc, profile, session, ws)
        return self.browser

    async def __aexit__(self, *exc: Any) -> None:
        if self.browser is not None:
            await self.browser.close()

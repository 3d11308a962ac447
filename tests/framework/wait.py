"""Waiting on conditions with deadlines (Core's `wait_until`): never a bare sleep in a test."""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any, Awaitable, Callable


async def wait_until(predicate: Callable[[], Any | Awaitable[Any]], timeout: float = 10.0,
                     interval: float = 0.02, message: str | Callable[[], str] = "") -> Any:
    """Poll `predicate` (sync or async) until it returns a truthy value, or fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            msg = message() if callable(message) else message
            raise AssertionError(f"wait_until timed out after {timeout} s{': ' + msg if msg else ''}")
        await asyncio.sleep(interval)


def wait_until_sync(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02,
                    message: str = "") -> Any:
    """The same for synchronous tests (subprocesses, files)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"wait_until timed out after {timeout} s{': ' + message if message else ''}")
        time.sleep(interval)

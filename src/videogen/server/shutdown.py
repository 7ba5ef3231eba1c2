"""Learning that the server is asked to stop, when its graceful shutdown begins.

Uvicorn waits for open responses to finish before it runs the app's lifespan shutdown, so an
event stream that only ended at lifespan shutdown would hold the server for its whole graceful
timeout. Uvicorn handles SIGINT and SIGTERM with ``signal.signal``; while the app runs, a handler
in front of uvicorn's first tells the app, then lets uvicorn begin its shutdown as before.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def on_stop_signal(callback: Callable[[], None]) -> Iterator[None]:
    """Run ``callback`` on the running event loop when SIGINT or SIGTERM arrives.

    Only where a server already handles these signals (a Python callable is installed) and only
    in the main thread; elsewhere (an app run by a test client, say) nothing is changed.
    """
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    if threading.current_thread() is not threading.main_thread() or not all(
        callable(handler) for handler in previous.values()
    ):
        yield
        return
    loop = asyncio.get_running_loop()

    def handle(sig: int, frame: FrameType | None) -> None:
        # A signal handler interrupts whatever the main thread was doing: schedule, do not run.
        loop.call_soon_threadsafe(callback)
        previous[sig](sig, frame)  # type: ignore[operator]

    for sig in SIGNALS:
        signal.signal(sig, handle)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            if signal.getsignal(sig) is handle:
                signal.signal(sig, handler)

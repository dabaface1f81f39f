"""``smsxml serve --send-demo``: the newcomer's first message, sent over SOAP to the
bridge that just started and followed until every recipient is final."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from smsxml.errors import SmsxmlError
from smsxml.soap import SoapClient

__all__ = ["DEMO_RECIPIENTS", "send_demo"]

#: one Greek number that the sandbox delivers, one (ending in 0) that it fails
DEMO_RECIPIENTS = ("306912345678", "306912345670")


def send_demo(
    endpoint: str, say: Callable[[str], None], *, timeout: float = 30.0
) -> dict[str, str]:
    """Send the demo message through ``endpoint`` as demo/demo; report each state change
    with ``say``; return the final states."""
    with SoapClient(endpoint, "demo", "demo") as client:
        sent = client.send("smsxml", list(DEMO_RECIPIENTS), "Hello from smsxml!")
        say(f"demo: sent message {sent.id} to {', '.join(DEMO_RECIPIENTS)} over SOAP")
        seen: dict[str, str] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for recipient in DEMO_RECIPIENTS:
                state = client.query(sent.id, recipient).status.value
                if seen.get(recipient) != state:
                    seen[recipient] = state
                    note = " (the sandbox fails numbers ending in 0)" if state == "Failed" else ""
                    say(f"demo: {recipient} {state}{note}")
            if all(s in ("Delivered", "Failed") for s in seen.values()):
                break
            time.sleep(0.2)
    return seen


def send_demo_in_background(endpoint: str, say: Callable[[str], None]) -> threading.Thread:
    """Run :func:`send_demo` beside the server, never letting it take the server down."""

    def run() -> None:
        time.sleep(0.5)  # let the server reach its accept loop
        try:
            send_demo(endpoint, say)
        except (SmsxmlError, OSError) as error:
            say(f"demo: could not send the demo message: {error}")

    thread = threading.Thread(target=run, name="send-demo", daemon=True)
    thread.start()
    return thread

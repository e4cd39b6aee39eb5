"""A real SMTP server for the tests: aiosmtpd on a free loopback port, keeping every message it receives."""

import asyncio
import email
import email.policy
import logging
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from devstack.processes import free_port


def recipients(message: EmailMessage) -> set[str]:
    return {a.addr_spec for header in message.get_all("To", []) for a in header.addresses}


class Mailbox:
    """aiosmtpd's Controller serves from its own thread and event loop, so messages go through a lock and
    `wait_for` polls rather than waiting on an asyncio primitive of the other loop."""

    def __init__(self, host: str = "127.0.0.1"):
        self.host, self.port = host, free_port()
        self._messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname=host, port=self.port)
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO

    # Recipients at this domain are refused for good (550), as a real server refuses an unknown mailbox.
    REJECTED_DOMAIN = "rejected.example"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:  # aiosmtpd's hook
        if address.lower().endswith("@" + self.REJECTED_DOMAIN):
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's handler hook
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        with self._lock:
            self._messages.append(message)
        return "250 Message accepted for delivery"

    def start(self) -> "Mailbox":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return list(self._messages)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in recipients(m)]

    async def wait_for(self, predicate: Callable[[EmailMessage], bool], timeout: float = 10) -> EmailMessage:
        """The first message (already received or arriving within `timeout`) for which predicate is true."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages:
                if predicate(message):
                    return message
            if time.monotonic() > deadline:
                seen = [(m["To"], m["Subject"]) for m in self.messages]
                raise TimeoutError(f"no matching message within {timeout}s; received: {seen}")
            await asyncio.sleep(0.05)

"""The development mail sink: an SMTP server that keeps each message as an .eml file and logs one line.

    python -m devstack.mailsink --port 1025 --dir .data/mail [--http-port 8025]

Open a file with any mail client, or the page at http://127.0.0.1:8025/ (devstack/mailpage.py) when
--http-port is given; nothing is ever delivered anywhere.
"""

import argparse
import asyncio
import email
import email.policy
import logging
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiosmtpd.smtp import SMTP

from core.config import get_settings
from core.logging import configure_logging
from devstack import mailpage

log = logging.getLogger("mailsink")


class EmlWriter:
    """aiosmtpd handler: one file per message, named by the time received (sortable), never overwritten."""

    def __init__(self, directory: Path):
        self.directory = directory

    async def handle_DATA(self, server, session, envelope) -> str:
        content = envelope.original_content or envelope.content
        now = datetime.now(UTC)
        path = self.directory / f"{now:%Y%m%dT%H%M%S.%fZ}-{uuid.uuid4().hex[:6]}.eml"
        # Written aside and renamed, so a reader never sees half a message.
        partial = path.with_suffix(".part")
        partial.write_bytes(content)
        partial.rename(path)
        subject = email.message_from_bytes(content, policy=email.policy.default)["Subject"]
        log.info("mail from %s to %s: %r -> %s", envelope.mail_from, ", ".join(envelope.rcpt_tos), subject, path.name)
        return "250 Message accepted for delivery"


async def serve(host: str, port: int, directory: Path, http_port: int | None = None) -> None:
    directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before serving
    handler = EmlWriter(directory)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, hostname="mailsink"), host, port)
    page = await mailpage.start(host, http_port, directory) if http_port else None
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("mail sink on %s:%d writing to %s", host, port, directory)
    await stop.wait()
    server.close()
    await server.wait_closed()
    if page:
        page.close()
        await page.wait_closed()
    log.info("mail sink stopped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", type=Path, default=Path(".data/mail"))
    parser.add_argument("--http-port", type=int, default=None, help="also serve a page listing the messages")
    args = parser.parse_args()
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json, service="mailsink")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO
    asyncio.run(serve(args.host, args.port, args.dir, args.http_port))


if __name__ == "__main__":
    main()

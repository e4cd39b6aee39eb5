"""A tiny read-only web page over the mail sink's folder of .eml files (development only):
`/` lists the messages newest first, `/<file>.eml` shows one (headers and the plain-text body),
`/<file>.eml?raw=1` the file itself. Plain asyncio, no framework: it serves one developer's browser."""

import asyncio
import email
import email.policy
import html
import logging
import re
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlsplit

log = logging.getLogger("mailpage")

_NAME = re.compile(r"[0-9A-Za-z.\-]+\.eml")  # what the sink writes; nothing else is ever served


def _read(path: Path) -> EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def index_html(directory: Path) -> str:
    rows = []
    for path in sorted(directory.glob("*.eml"), reverse=True):
        message = _read(path)
        rows.append(
            f"<tr><td>{html.escape(message['Date'] or '')}</td><td>{html.escape(message['To'] or '')}</td>"
            f"<td><a href='/{path.name}'>{html.escape(message['Subject'] or '(no subject)')}</a></td></tr>"
        )
    body = "".join(rows) or "<tr><td colspan=3>No mail yet.</td></tr>"
    return (
        f"<!doctype html><meta charset=utf-8><title>Mail sink</title><h1>Mail sink</h1>"
        f"<p>{len(rows)} messages in {html.escape(str(directory))}</p>"
        f"<table border=1 cellpadding=4><tr><th>Date</th><th>To</th><th>Subject</th></tr>{body}</table>"
    )


def message_html(path: Path) -> str:
    message = _read(path)
    headers = "".join(
        f"<b>{name}:</b> {html.escape(str(message[name] or ''))}<br>"
        for name in ("From", "To", "Subject", "Date", "Message-ID")
    )
    part = message.get_body(("plain", "html"))
    text = part.get_content() if part is not None else ""
    return (
        f"<!doctype html><meta charset=utf-8><title>{html.escape(message['Subject'] or '')}</title>"
        f"<p><a href='/'>All mail</a> &middot; <a href='/{path.name}?raw=1'>raw</a></p><p>{headers}</p>"
        f"<pre style='white-space:pre-wrap'>{html.escape(text)}</pre>"
    )


def respond(directory: Path, target: str) -> tuple[int, str, bytes]:
    """(status, content type, body) for a GET of `target`."""
    url = urlsplit(target)
    name = unquote(url.path.lstrip("/"))
    if not name:
        return 200, "text/html; charset=utf-8", index_html(directory).encode()
    path = directory / name
    if not _NAME.fullmatch(name) or not path.is_file():
        return 404, "text/plain; charset=utf-8", b"no such message\n"
    if "raw=1" in url.query:
        return 200, "message/rfc822", path.read_bytes()
    return 200, "text/html; charset=utf-8", message_html(path).encode()


async def _handle(directory: Path, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        request = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        status, content_type, body = (
            respond(directory, target) if method == "GET" else (405, "text/plain; charset=utf-8", b"GET only\n")
        )
        reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed"}[status]
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, ConnectionError):
        pass
    finally:
        writer.close()


async def start(host: str, port: int, directory: Path) -> asyncio.Server:
    server = await asyncio.start_server(lambda r, w: _handle(directory, r, w), host, port)
    log.info("mail page on http://%s:%d/", host, port)
    return server

"""The dev mail sink end to end on loopback: real SMTP in (aiosmtplib -> aiosmtpd), real HTTP out (httpx)."""

import asyncio
from email.message import EmailMessage

import aiosmtplib
import httpx
from aiosmtpd.smtp import SMTP

from devstack import mailpage
from devstack.mailsink import EmlWriter
from devstack.processes import free_port


async def test_page_lists_and_shows_the_messages_the_sink_wrote(tmp_path):
    loop = asyncio.get_running_loop()
    smtp_port, http_port = free_port(), free_port()
    sink = await loop.create_server(lambda: SMTP(EmlWriter(tmp_path), hostname="mailsink"), "127.0.0.1", smtp_port)
    page = await mailpage.start("127.0.0.1", http_port, tmp_path)
    try:
        for n, subject in enumerate(["Your bill is due <soon>", "Statement ready"]):
            message = EmailMessage()
            message["From"], message["To"], message["Subject"] = "bo@example.com", f"m{n}@example.com", subject
            message.set_content(f"Hello {n} & welcome")
            await aiosmtplib.send(message, hostname="127.0.0.1", port=smtp_port)
            await asyncio.sleep(0.01)  # file names sort by arrival time

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as http:
            index = await http.get("/")
            assert index.status_code == 200 and "2 messages" in index.text
            assert index.text.index("Statement ready") < index.text.index("Your bill is due &lt;soon&gt;")
            first = sorted(tmp_path.glob("*.eml"))[0].name
            shown = await http.get(f"/{first}")
            assert shown.status_code == 200
            assert "Hello 0 &amp; welcome" in shown.text and "m0@example.com" in shown.text
            raw = await http.get(f"/{first}?raw=1")
            assert (
                raw.headers["content-type"] == "message/rfc822" and b"Subject: Your bill is due <soon>" in raw.content
            )
            for bad in ("/../pyproject.toml", "/%2e%2e%2fpyproject.toml", "/nope.eml", "/x.txt"):
                assert (await http.get(bad)).status_code == 404
            assert (await http.post("/")).status_code == 405
    finally:
        page.close()
        sink.close()
        await page.wait_closed()
        await sink.wait_closed()

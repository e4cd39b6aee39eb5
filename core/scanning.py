"""Virus scanning of uploads, behind one interface: the sandbox's stand-in over HTTP in development and tests, ClamAV's
daemon (clamd) in production. DOCUMENT_SCANNER picks one (README "Documents").

clamd speaks INSTREAM: `zINSTREAM\\0`, then chunks each prefixed by its length (4 bytes, big-endian), then a zero
length; it answers `stream: OK`, `stream: <signature> FOUND` or `... ERROR`, ended by a NUL byte. It refuses a stream
longer than its StreamMaxLength (25 MB by default): keep DOCUMENT_MAX_BYTES below it."""

import asyncio
import struct
from typing import Protocol

import httpx

from core.config import Settings
from models.documents import ScanVerdict


class ScannerError(Exception):
    """The scanner could not say (unreachable, an error, an answer we do not know): the scan is retried."""


class Scanner(Protocol):
    async def scan(self, data: bytes) -> ScanVerdict: ...


class SandboxScanner:
    def __init__(self, base_url: str, timeout: float):
        self.base_url, self.timeout = base_url.rstrip("/"), timeout
        self._client: httpx.AsyncClient | None = None  # one per process: its connections are kept alive

    async def scan(self, data: bytes) -> ScanVerdict:
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout)
        try:
            response = await self._client.post(
                "/scanner/scan", content=data, headers={"Content-Type": "application/octet-stream"}
            )
        except httpx.HTTPError as exc:
            raise ScannerError(f"the scanner is not reachable: {exc!r}") from exc
        if response.status_code != 200:
            raise ScannerError(f"the scanner answered {response.status_code}: {response.text[:200]}")
        return ScanVerdict.model_validate(response.json())


class ClamdScanner:
    CHUNK = 64 * 1024

    def __init__(self, address: str, timeout: float):
        self.address, self.timeout = address, timeout

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.address.startswith("unix://"):
            return await asyncio.open_unix_connection(self.address.removeprefix("unix://"))
        if self.address.startswith("tcp://"):
            host, _, port = self.address.removeprefix("tcp://").rpartition(":")
            return await asyncio.open_connection(host, int(port))
        raise ScannerError(f"CLAMD_ADDRESS must be unix:///path or tcp://host:port, not {self.address!r}")

    async def _instream(self, data: bytes) -> bytes:
        reader, writer = await self._connect()
        try:
            writer.write(b"zINSTREAM\0")
            for start in range(0, len(data), self.CHUNK):
                chunk = data[start : start + self.CHUNK]
                writer.write(struct.pack(">I", len(chunk)) + chunk)
                await writer.drain()
            writer.write(struct.pack(">I", 0))
            await writer.drain()
            return await reader.readuntil(b"\0")
        finally:
            writer.close()

    async def scan(self, data: bytes) -> ScanVerdict:
        try:
            answer = await asyncio.wait_for(self._instream(data), self.timeout)
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            raise ScannerError(f"clamd at {self.address} did not answer: {exc!r}") from exc
        return parse_clamd_answer(answer.rstrip(b"\0").decode("utf-8", "replace"))


def parse_clamd_answer(answer: str) -> ScanVerdict:
    verdict = answer.removeprefix("stream:").strip()
    if verdict == "OK":
        return ScanVerdict(clean=True)
    if verdict.endswith(" FOUND"):
        return ScanVerdict(clean=False, signature=verdict.removesuffix(" FOUND").strip())
    raise ScannerError(f"clamd could not scan the stream: {answer!r}")


def scanner_from_settings(settings: Settings) -> Scanner:
    if settings.document_scanner == "clamd":
        return ClamdScanner(settings.clamd_address, settings.http_timeout)
    return SandboxScanner(settings.scanner_base_url, settings.http_timeout)

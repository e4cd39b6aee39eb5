"""The pure parts of documents: type by content, signed links, the sealing context, the local storage backend, the
scanners' verdicts (the sandbox's rule, clamd's INSTREAM framing against a stand-in speaking its protocol)."""

import asyncio
import struct
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from core.config import Settings
from core.crypto import FileCipher
from core.documents import LinkRefused, check_link, link_signature, sealing_context, sniff
from core.scanning import ClamdScanner, ScannerError, parse_clamd_answer
from core.storage.local import LocalDirectoryStorage
from sandbox.scanner import EICAR, verdict


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"%PDF-1.4\n...", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
        (b"\xff\xd8\xff\xe1rest", "image/jpeg"),
        (b"MZ\x90\x00 a Windows executable", None),
        (b"PK\x03\x04 a zip (docx, xlsx too)", None),
        (b"<html>%PDF-", None),  # the signature must open the file
        (b"", None),
    ],
)
def test_the_type_is_read_from_the_first_bytes(data, expected):
    assert sniff(data) == expected


SETTINGS = Settings(jwt_secret="a-secret-for-the-links-of-this-test-0123456789")
DOC, USER = uuid.uuid4(), uuid.uuid4()
NOW = datetime(2026, 12, 2, tzinfo=UTC)


def test_a_signed_link_opens_until_it_expires():
    expires = int((NOW + timedelta(minutes=5)).timestamp())
    signature = link_signature(SETTINGS, DOC, 2, expires, USER)
    check_link(SETTINGS, DOC, 2, expires, USER, signature, NOW)
    with pytest.raises(LinkRefused) as expired:
        check_link(SETTINGS, DOC, 2, expires, USER, signature, NOW + timedelta(minutes=5))
    assert (expired.value.status, expired.value.code) == (410, "link_expired")


@pytest.mark.parametrize("change", ["document", "number", "expires", "requester", "signature", "secret"])
def test_any_change_to_a_link_is_refused_403(change):
    expires = int((NOW - timedelta(minutes=1)).timestamp())  # expired too: the forgery is what is said
    signature = link_signature(SETTINGS, DOC, 1, expires, USER)
    args = {"document_id": DOC, "number": 1, "expires": expires, "requester_id": USER, "signature": signature}
    settings = SETTINGS
    if change == "document":
        args["document_id"] = uuid.uuid4()
    elif change == "number":
        args["number"] = 2
    elif change == "expires":
        args["expires"] = expires + 3600
    elif change == "requester":
        args["requester_id"] = uuid.uuid4()
    elif change == "signature":
        args["signature"] = signature[:-1] + ("a" if signature[-1] != "a" else "b")
    else:
        settings = Settings(jwt_secret="another-secret-another-secret-another-secret")
    with pytest.raises(LinkRefused) as refused:
        check_link(settings, now=NOW, **args)  # type: ignore[arg-type]
    assert (refused.value.status, refused.value.code) == (403, "invalid_link")


def test_a_version_ciphertext_opens_only_as_its_own_version():
    cipher = FileCipher(["MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="])
    document, version = uuid.uuid4(), uuid.uuid4()
    key_id, sealed = cipher.encrypt(b"%PDF-secret", sealing_context(document, version))
    assert b"secret" not in sealed
    assert cipher.decrypt(key_id, sealed, sealing_context(document, version)) == b"%PDF-secret"
    for other in (sealing_context(document, uuid.uuid4()), sealing_context(uuid.uuid4(), version)):
        with pytest.raises(ValueError):
            cipher.decrypt(key_id, sealed, other)
    # Rotation: a new key encrypts, the old still opens what it sealed.
    rotated = FileCipher(
        ["bmV3LWtleS1uZXcta2V5LW5ldy1rZXktbmV3LWtleSE=", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="]
    )
    assert rotated.current_key_id != key_id
    assert rotated.decrypt(key_id, sealed, sealing_context(document, version)) == b"%PDF-secret"


async def test_local_storage_puts_gets_and_deletes_whole_objects(tmp_path):
    storage = LocalDirectoryStorage(tmp_path)
    await storage.put("documents/a/b", b"one")
    await storage.put("documents/a/b", b"two")  # overwritten whole
    assert await storage.get("documents/a/b") == b"two" and await storage.exists("documents/a/b")
    assert [p.name for p in (tmp_path / "documents" / "a").iterdir()] == ["b"]  # no temporary file left
    await storage.delete("documents/a/b")
    await storage.delete("documents/a/b")  # a retried delete succeeds
    assert not await storage.exists("documents/a/b")
    with pytest.raises(KeyError):
        await storage.get("documents/a/b")
    for bad in ("../outside", "/etc/passwd", "documents//x", "Documents/A"):
        with pytest.raises(ValueError):
            await storage.put(bad, b"x")


def test_the_sandbox_scanner_flags_eicar_anywhere():
    assert verdict(b"%PDF-1.4 clean") == {"clean": True, "signature": None}
    assert verdict(b"%PDF-1.4\n" + EICAR + b"\n%%EOF") == {"clean": False, "signature": "Eicar-Test-Signature"}


def test_clamd_answers():
    assert parse_clamd_answer("stream: OK").clean
    found = parse_clamd_answer("stream: Win.Test.EICAR_HDB-1 FOUND")
    assert not found.clean and found.signature == "Win.Test.EICAR_HDB-1"
    with pytest.raises(ScannerError):
        parse_clamd_answer("INSTREAM size limit exceeded. ERROR")


async def test_clamd_instream_framing(tmp_path):
    """A stand-in speaking clamd's INSTREAM on a unix socket: it reassembles the chunks and answers as clamd does."""
    received: list[bytes] = []

    async def clamd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert await reader.readexactly(10) == b"zINSTREAM\0"
        data = b""
        while size := struct.unpack(">I", await reader.readexactly(4))[0]:
            data += await reader.readexactly(size)
        received.append(data)
        writer.write(b"stream: Eicar-Test-Signature FOUND\0" if EICAR in data else b"stream: OK\0")
        await writer.drain()
        writer.close()

    path = tmp_path / "clamd.sock"
    server = await asyncio.start_unix_server(clamd, path=str(path))
    async with server:
        scanner = ClamdScanner(f"unix://{path}", timeout=5)
        big = b"%PDF-" + bytes(range(256)) * 1000  # several chunks
        assert (await scanner.scan(big)).clean
        assert not (await scanner.scan(b"%PDF-" + EICAR)).clean
        assert received[0] == big
    with pytest.raises(ScannerError):
        await ClamdScanner(f"unix://{tmp_path}/missing.sock", timeout=1).scan(b"x")

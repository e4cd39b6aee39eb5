"""Documents through HTTP on the real stack: uploads checked by content and size, scanned by the sandbox before
anything is stored, sealed on disk, versioned, downloaded by signed links that expire, audited, scoped by the access
policy; the loan agreement stored as a document of its loan, once."""

import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from sqlalchemy import text
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities.documents import DocumentActivities
from activities.loans import LoanActivities
from api.routers.documents import upload_id
from core.crypto import FileCipher
from core.documents import sealing_context, staging_key
from core.scanning import SandboxScanner
from core.storage import storage_from_settings
from devstack import processes
from models.documents import DocumentVersion, UploadInput
from sandbox.scanner import EICAR
from tests.conftest import assert_error, make_org
from tests.integration.test_loans import FINAL, apply, decide, wait_loan, waiting_on
from workflows.document_upload import DocumentUploadWorkflow

BOUNDARY = "test-boundary-7d1f"
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


@pytest.fixture(scope="module")
async def org(http, su):
    return await make_org(http, su, roles=("org_admin", "operator", "member", "loan_officer"))


def marked(content: bytes) -> tuple[bytes, bytes]:
    """`content` with a marker of its own appended (to look for in the stored bytes), and the marker."""
    marker = f"PLAINTEXT-MARKER-{uuid.uuid4().hex}".encode()
    return content + marker, marker


async def upload(http, headers, owner_id, content, filename="file.pdf", kind="id_document", content_type=None, **form):
    return await http.post(
        "/api/v1/documents",
        headers=headers,
        data={"entity_type": "user", "entity_id": owner_id, "kind": kind, **form},
        files={"file": (filename, content, content_type or "application/pdf")},
    )


async def fetch(http, headers, document_id, number, **params):
    link = await http.post(f"/api/v1/documents/{document_id}/versions/{number}/link", headers=headers, params=params)
    assert link.status_code == 200, link.text
    return link.json()["url"], await http.get(link.json()["url"])


def stored_files(settings, document_id) -> list[Path]:
    return sorted((Path(settings.document_storage_dir) / "documents" / str(document_id)).glob("*"))


async def test_pdf_png_and_jpeg_are_stored_by_their_content_type_sealed_on_disk(http, org, settings):
    member = org.users["member"]
    for content, name, declared, expected in (
        (PDF, "passport.pdf", "application/pdf", "application/pdf"),
        (PNG, "scan", "application/octet-stream", "image/png"),  # the declared type is not believed either way
        (JPEG, "photo.jpg", "image/jpeg", "image/jpeg"),
    ):
        body, marker = marked(content)
        response = await upload(http, org.headers["member"], member["id"], body, name, content_type=declared)
        assert response.status_code == 201, response.text
        document = response.json()
        assert document["entity_id"] == member["id"] and document["sensitivity"] == "sensitive"
        assert document["latest_version"] == 1
        [version] = document["versions"]
        assert version["content_type"] == expected and version["size_bytes"] == len(body)
        assert version["sha256"] == hashlib.sha256(body).hexdigest()
        # At rest: one object, not the plaintext nor any part of it that says what it is.
        [stored] = stored_files(settings, document["id"])
        on_disk = stored.read_bytes()
        assert marker not in on_disk and content[:4] not in on_disk[:16] and len(on_disk) == len(body) + 12 + 16
        _, download = await fetch(http, org.headers["member"], document["id"], 1)
        assert download.status_code == 200 and download.content == body
        assert download.headers["content-type"] == expected


async def test_a_disguised_or_unknown_file_is_refused_415_and_a_big_one_413(http, org, settings):
    member, headers = org.users["member"], org.headers["member"]
    for body in (b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 64, b"PK\x03\x04\x14\x00" + b"\x00" * 64, b"just text"):
        error = assert_error(await upload(http, headers, member["id"], body, "contract.pdf"), 415)
        assert error["code"] == "unsupported_media_type" and "application/pdf" in error["details"]["accepted"]
    too_big = PDF + b"0" * settings.document_max_bytes
    error = assert_error(await upload(http, headers, member["id"], too_big), 413, "file_too_large")
    assert error["details"]["max_bytes"] == settings.document_max_bytes
    assert_error(await upload(http, headers, member["id"], b""), 422, "empty_file")
    assert_error(await upload(http, headers, member["id"], PDF, kind="passport-ish"), 422, "validation_error")
    listed = await http.get("/api/v1/documents", headers=headers, params={"entity_id": member["id"]})
    assert all(d["title"] != "contract.pdf" for d in listed.json()["items"])


async def raw_request(port: int, head: str, chunks: list[bytes]) -> tuple[int, dict]:
    """Sends a request's head, then its body chunk by chunk until the server answers (on a raw socket, so the
    Content-Length may lie); the status and the error body of the answer. The server closes on unread body, which
    may reset the connection: what arrived before the reset is the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = bytearray()

    async def read_answer() -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                answer.extend(data)

    reading = asyncio.create_task(read_answer())
    try:
        writer.write(head.encode())
        for chunk in chunks:
            if reading.done() or answer:
                break  # answered: nothing more is sent
            writer.write(chunk)
            try:
                await asyncio.wait_for(writer.drain(), 5)
            except (ConnectionError, TimeoutError):
                break  # the server stopped reading
        await asyncio.wait_for(reading, 30)
    finally:
        writer.close()
    head_part, _, body = bytes(answer).partition(b"\r\n\r\n")
    return int(head_part.split()[1]), json.loads(body)


async def test_a_body_past_its_ceiling_is_a_413_before_it_is_read_or_spooled(api_server, org, settings):
    auth = org.headers["member"]["Authorization"]
    form = f"multipart/form-data; boundary={BOUNDARY}"
    # Declared far too large: refused on the head alone (nothing of the body is ever sent).
    head = f"POST /api/v1/documents HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Type: {form}\r\n"
    status, body = await raw_request(api_server.port, head + f"Content-Length: {10**10}\r\n\r\n", [])
    assert (status, body["error"]["code"]) == (413, "request_too_large"), body
    # Chunked, without a length: refused as soon as the body passes the ceiling, not once it has all arrived.
    part = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode() + PDF
    chunk = b"0" * 64 * 1024
    count = 4 * settings.document_max_bytes // len(chunk)  # four times the ceiling, were it all read
    chunks = [f"{len(part):x}\r\n".encode() + part + b"\r\n"] + [b"10000\r\n" + chunk + b"\r\n"] * count
    status, body = await raw_request(api_server.port, head + "Transfer-Encoding: chunked\r\n\r\n", chunks)
    assert (status, body["error"]["code"]) == (413, "request_too_large"), body
    assert body["error"]["details"]["limit_bytes"] == settings.document_max_bytes + 64 * 1024, body
    # Any other request has the general ceiling.
    big_json = json.dumps({"payee_name": "x" * settings.request_max_bytes, "amount": "1.00"})
    head = f"POST /api/v1/bills HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\n"
    status, body = await raw_request(api_server.port, head + f"Content-Length: {len(big_json)}\r\n\r\n", [])
    assert (status, body["error"]["details"]["limit_bytes"]) == (413, settings.request_max_bytes), body


async def test_eicar_is_refused_and_nothing_is_stored(http, org, settings, db):
    member, headers = org.users["member"], org.headers["member"]
    body, key = PDF + EICAR, uuid.uuid4().hex
    response = await upload(http, {**headers, "Idempotency-Key": key}, member["id"], body, "invoice.pdf")
    error = assert_error(response, 422, "malware_detected")
    assert error["details"]["signature"] == "Eicar-Test-Signature"
    # The upload's id (its document's too) is derived from the key: no row, no object, no staged copy of it.
    refused = upload_id(SimpleNamespace(id=uuid.UUID(member["id"])), key, f"user:{member['id']}:id_document", body)  # type: ignore[arg-type]
    async with db.session() as session:
        rows = await session.execute(
            text(
                "SELECT (SELECT count(*) FROM documents WHERE id = :id) + (SELECT count(*) FROM document_versions "
                "WHERE id = :id)"
            ),
            {"id": refused},
        )
        assert rows.scalar_one() == 0
    root = Path(settings.document_storage_dir)
    assert not (root / "documents" / str(refused)).exists() and not (root / "staging" / str(refused)).exists()
    # A version of an existing document is scanned too.
    document = (await upload(http, headers, member["id"], PDF)).json()
    again = await http.post(
        f"/api/v1/documents/{document['id']}/versions", headers=headers, files={"file": ("v2.pdf", body)}
    )
    assert_error(again, 422, "malware_detected")
    assert (await http.get(f"/api/v1/documents/{document['id']}", headers=headers)).json()["latest_version"] == 1
    assert len(stored_files(settings, document["id"])) == 1


async def test_versions_are_kept_and_each_can_be_fetched(http, org):
    member, headers = org.users["member"], org.headers["member"]
    first, second, third = PDF + b"v1", PNG + b"v2", PDF + b"v3"
    document = (await upload(http, headers, member["id"], first, kind="proof_of_address")).json()
    for n, content in ((2, second), (3, third)):
        response = await http.post(
            f"/api/v1/documents/{document['id']}/versions",
            headers={**org.headers["operator"], "Idempotency-Key": f"v{n}-{document['id']}"},  # staff add one too
            files={"file": (f"v{n}", content)},
        )
        assert response.status_code == 201, response.text
        assert response.json()["latest_version"] == n
    # The same key and file again: the same version, not a fourth.
    retried = await http.post(
        f"/api/v1/documents/{document['id']}/versions",
        headers={**org.headers["operator"], "Idempotency-Key": f"v3-{document['id']}"},
        files={"file": ("v3", third)},
    )
    assert retried.status_code == 201 and retried.json()["latest_version"] == 3
    versions = (await http.get(f"/api/v1/documents/{document['id']}/versions", headers=headers)).json()
    assert [v["number"] for v in versions["items"]] == [1, 2, 3]
    assert [v["content_type"] for v in versions["items"]] == ["application/pdf", "image/png", "application/pdf"]
    for n, content in ((1, first), (2, second), (3, third)):
        _, download = await fetch(http, headers, document["id"], n)
        assert download.content == content, n
    assert_error(await http.post(f"/api/v1/documents/{document['id']}/versions/4/link", headers=headers), 404)


async def test_a_version_whose_stored_object_is_gone_answers_410_not_500(http, org, settings):
    member, headers = org.users["member"], org.headers["member"]
    document = (await upload(http, headers, member["id"], PDF + b"lost")).json()
    [stored] = stored_files(settings, document["id"])
    stored.unlink()  # e.g. a bucket restored from before the upload
    _, download = await fetch(http, headers, document["id"], 1)
    assert_error(download, 410, "content_missing")


async def test_signed_links_expire_and_refuse_any_change(http, org):
    member, headers = org.users["member"], org.headers["member"]
    document = (await upload(http, headers, member["id"], PDF + b"links")).json()
    url, download = await fetch(http, headers, document["id"], 1)
    assert download.status_code == 200
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}

    def variant(path=parts.path, **changes) -> str:
        return f"{path}?{urlencode({**query, **changes})}"

    flipped = query["signature"][:-1] + ("0" if query["signature"][-1] != "0" else "1")
    for tampered in (
        variant(signature=flipped),
        variant(expires=str(int(query["expires"]) + 3600)),  # pushed back: a forgery, not an extension
        variant(requester=org.users["org_admin"]["id"]),
        variant(path=parts.path.replace("/versions/1/", "/versions/2/")),
    ):
        assert_error(await http.get(tampered), 403, "invalid_link")
    url, download = await fetch(http, headers, document["id"], 1, expires_in=2)
    assert download.status_code == 200
    expires = int(parse_qs(urlsplit(url).query)["expires"][0])
    assert expires - time.time() <= 3  # what was asked, rounded up to the second: not the 5-minute default
    await asyncio.sleep(expires - time.time() + 0.1)
    assert_error(await http.get(url), 410, "link_expired")


async def test_another_organizations_document_is_not_found_and_downloads_are_audited(http, su, org):
    member, headers = org.users["member"], org.headers["member"]
    document = (await upload(http, headers, member["id"], PDF + b"audited")).json()
    other = await make_org(http, su, roles=("org_admin", "member"))
    for stranger in (other.headers["org_admin"], other.headers["member"]):
        assert_error(await http.get(f"/api/v1/documents/{document['id']}", headers=stranger), 404)
        link = await http.post(f"/api/v1/documents/{document['id']}/versions/1/link", headers=stranger)
        assert_error(link, 404)
        listed = await http.get("/api/v1/documents", headers=stranger, params={"entity_id": member["id"]})
        assert listed.status_code == 200 and listed.json()["total"] == 0
        refused = await http.post(
            f"/api/v1/documents/{document['id']}/versions", headers=stranger, files={"file": ("x.pdf", PDF)}
        )
        assert_error(refused, 404)
    # Staff of the organization see it; the org admin's download is audited under their name.
    assert (
        await http.get(f"/api/v1/documents/{document['id']}", headers=org.headers["loan_officer"])
    ).status_code == 200
    _, download = await fetch(http, org.headers["org_admin"], document["id"], 1)
    assert download.status_code == 200
    audit = await http.get("/api/v1/audit", headers=su, params={"entity_type": "document", "entity_id": document["id"]})
    downloads = [row for row in audit.json()["items"] if row["action"] == "document.downloaded"]
    assert [row["actor"] for row in downloads] == [org.users["org_admin"]["email"]]
    assert downloads[0]["after"]["version"] == 1


async def test_who_may_upload(http, org):
    member = org.users["member"]
    # A member never writes a loan agreement; an approver only reads; staff upload for their members.
    assert_error(await upload(http, org.headers["member"], member["id"], PDF, kind="loan_agreement"), 403)
    assert_error(await upload(http, org.headers["loan_officer"], member["id"], PDF), 403)
    assert (await upload(http, org.headers["operator"], member["id"], PDF)).status_code == 201
    # A member uploads only for themself: another member is not found.
    assert_error(await upload(http, org.headers["member"], org.users["org_admin"]["id"], PDF), 404)


async def test_the_loan_agreement_is_a_document_of_its_loan_stored_once(
    http, su, sandbox_url, bank, product, db, settings
):
    loan = await apply(http, sandbox_url, bank, product, amount="2000.00", income="900000.00")
    state = await waiting_on(http, su, loan["id"], 1, "loan_officer")
    assert (await decide(http, bank.headers["loan_officer"], state["request_id"])).status_code == 200
    assert (await wait_loan(http, su, loan["id"], FINAL))["status"] == "active"
    member = bank.headers["member"]
    listed = (await http.get("/api/v1/documents", headers=member, params={"entity_id": loan["id"]})).json()
    [document] = listed["items"]
    assert document["kind"] == "loan_agreement" and document["entity_type"] == "loan"
    pdf = (await http.get(f"/api/v1/loans/{loan['id']}/agreement.pdf", headers=member)).content
    _, download = await fetch(http, member, document["id"], 1)
    assert download.content == pdf
    # The activity run again (a retry): the same version, no second one, the object untouched.
    before = [p.read_bytes() for p in stored_files(settings, document["id"])]
    await ActivityEnvironment().run(LoanActivities(db, settings).render_agreement, uuid.UUID(loan["id"]))
    again = (await http.get(f"/api/v1/documents/{document['id']}", headers=member)).json()
    assert again["latest_version"] == 1 and len(again["versions"]) == 1
    assert [p.read_bytes() for p in stored_files(settings, document["id"])] == before


async def test_an_unreachable_scanner_fails_the_upload_and_discards_what_was_staged(temporal_env, db, settings):
    """The workflow on a worker of its own whose scanner is a closed port (real HTTP, nobody listening): after its
    attempts the upload fails (the API answers 503), the staged copy is gone and nothing was written."""
    client, queue = temporal_env.client, f"documents-{uuid.uuid4().hex[:8]}"
    unreachable = SandboxScanner(f"http://127.0.0.1:{processes.free_port()}", timeout=1)
    activities = DocumentActivities(db, settings, scanner=unreachable)
    storage, cipher = storage_from_settings(settings), FileCipher.from_settings(settings)
    upload_key = uuid.uuid4()
    key_id, sealed = cipher.encrypt(PDF, sealing_context(upload_key, upload_key))
    await storage.put(staging_key(upload_key), sealed)
    upload = UploadInput(
        upload_id=upload_key,
        document_id=upload_key,
        new_document=True,
        org_id=uuid.uuid4(),
        entity_type="user",
        entity_id=uuid.uuid4(),
        kind="id_document",
        sensitivity="sensitive",
        title="unscanned.pdf",
        filename="unscanned.pdf",
        content_type="application/pdf",
        size_bytes=len(PDF),
        sha256=hashlib.sha256(PDF).hexdigest(),
        key_id=key_id,
        created_by=None,
    )
    async with Worker(
        client,
        task_queue=queue,
        workflows=[DocumentUploadWorkflow],
        activities=[activities.scan_upload, activities.store_upload, activities.discard_upload],
    ):
        with pytest.raises(WorkflowFailureError) as failed:
            await client.execute_workflow(
                DocumentUploadWorkflow.run, upload, id=f"document-upload-{upload_key}", task_queue=queue
            )
    assert isinstance(failed.value.cause, ApplicationError) and failed.value.cause.type == "ScanFailed"
    assert not await storage.exists(staging_key(upload_key))
    async with db.session() as session:
        assert (await session.get(DocumentVersion, upload_key)) is None

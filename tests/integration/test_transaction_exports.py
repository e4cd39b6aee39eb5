"""Exports of members' data: a transactions download in each format read back (CSV, JSON, XLSX with openpyxl, the
PDF statement's text with pypdf) with exactly the rows the filters and the access policy give; a large one refused
for the background path, which notifies once with a signed link that downloads without signing in (an altered or
expired one is a 403); a GDPR zip with the member's JSON and files and nothing of another member's."""

import csv
import io
import json
import re
import uuid
import zipfile
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import text

from domain import export_links
from tests.conftest import assert_error, make_org, make_user, open_account
from tests.planted import planted_import
from tests.polling import poll

V1 = "/api/v1/transaction-exports"


@pytest.fixture(scope="module")
async def org(http, su):
    return await make_org(http, su, roles=("org_admin", "operator", "member"))


async def plant(db, org_id: str, user_id: str, rows: list[tuple[str, str, str, str]]) -> list[str]:
    """Imported transactions (posted_on, amount, category, merchant) of a member; their txn ids ('I<id>')."""
    ids = []
    async with db.session() as session, session.begin():
        planted = await planted_import(session, org_id, user_id)
        for posted_on, amount, category, merchant in rows:
            made = await session.execute(
                text(
                    "INSERT INTO imported_transactions (org_id, user_id, import_id, external_account_id, source, posted_on, amount, merchant, "
                    "description, category_key, dedup_key) VALUES (:org, :user, :import, :account, 'csv', :day, :amount, :merchant, "
                    ":merchant, :category, :key) RETURNING id"
                ),
                {
                    **planted,
                    "org": org_id,
                    "user": user_id,
                    "day": date.fromisoformat(posted_on),
                    "amount": Decimal(amount),
                    "merchant": merchant,
                    "category": category,
                    "key": uuid.uuid4().hex,
                },
            )
            ids.append(f"I{made.scalar_one()}")
    return ids


@pytest.fixture(scope="module")
async def member_rows(http, su, org, db):
    """A member with a real deposit (a ledger row) and five imported rows in two categories and months; another
    member with rows of their own in the same categories and dates."""
    member, headers = await make_user(http, su, "member", org.id)
    other, other_headers = await make_user(http, su, "member", org.id)
    account = await open_account(http, su, org.id, member["id"], deposit="500.00")
    rows = [
        ("2026-01-05", "-40.00", "groceries", "Corner Shop"),  # before the period: the opening total
        ("2026-02-03", "-12.50", "groceries", "Corner Shop"),
        ("2026-02-10", "-30.25", "dining", "Pizza Place"),
        ("2026-02-20", "-7.25", "groceries", "Market"),
        ("2026-03-02", "-99.00", "dining", "Late Bistro"),  # after the period
    ]
    ids = await plant(db, org.id, member["id"], rows)
    await plant(db, org.id, other["id"], [("2026-02-11", "-66.66", "groceries", "Other Shop")])
    return {
        "member": member,
        "headers": headers,
        "other": other,
        "other_headers": other_headers,
        "account": account,
        "ids": ids,
    }


FEB = {"date_from": "2026-02-01", "date_to": "2026-02-28"}


async def test_downloads_in_every_format_hold_the_filtered_rows(http, member_rows):
    headers, ids = member_rows["headers"], member_rows["ids"]
    feb = set(ids[1:4])

    response = await http.get(f"{V1}/download", headers=headers, params={**FEB, "format": "csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    parsed = list(csv.DictReader(io.StringIO(response.text)))
    assert {r["txn_id"] for r in parsed} == feb
    assert {r["amount"] for r in parsed} == {"-12.50", "-30.25", "-7.25"}

    response = await http.get(
        f"{V1}/download", headers=headers, params={**FEB, "format": "json", "category": "groceries"}
    )
    assert response.status_code == 200, response.text
    parsed_json = response.json()
    assert {r["txn_id"] for r in parsed_json} == {ids[1], ids[3]}
    assert all(r["category_key"] == "groceries" and r["user_id"] == member_rows["member"]["id"] for r in parsed_json)

    # The real deposit is a ledger row of the account: filtered by the account, only it.
    response = await http.get(
        f"{V1}/download", headers=headers, params={"account_id": member_rows["account"]["id"], "format": "json"}
    )
    [deposit] = response.json()
    assert deposit["txn_id"].startswith("L") and Decimal(deposit["amount"]) == Decimal("500.00")

    response = await http.get(f"{V1}/download", headers=headers, params={**FEB, "format": "xlsx"})
    assert response.status_code == 200, response.text
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).active
    table = list(sheet.iter_rows(values_only=True))
    assert table[0][0] == "txn_id" and {row[0] for row in table[1:]} == feb
    assert sorted(Decimal(str(row[2])) for row in table[1:]) == [Decimal("-30.25"), Decimal("-12.50"), Decimal("-7.25")]

    response = await http.get(f"{V1}/download", headers=headers, params={**FEB, "format": "pdf"})
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    words = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert "Period: 2026-02-01 to 2026-02-28" in words
    # opening: the January expense and the deposit (recorded today, so after February: not in it)
    assert "Opening total: -40.00" in words and "Closing total: -90.00" in words
    assert "Pizza Place" in words and "Late Bistro" not in words
    assert re.search(r"dining\s+-30\.25", words) and re.search(r"groceries\s+-19\.75", words)


async def test_the_lists_amount_merchant_text_and_source_filters_narrow_an_export_the_same_way(http, member_rows):
    headers, ids = member_rows["headers"], member_rows["ids"]

    async def exported(**params) -> set[str]:
        response = await http.get(f"{V1}/download", headers=headers, params={**params, "format": "json"})
        assert response.status_code == 200, response.text
        return {r["txn_id"] for r in response.json()}

    async def listed(**params) -> set[str]:
        response = await http.get("/api/v1/transactions", headers=headers, params={**params, "limit": 100})
        assert response.status_code == 200, response.text
        return {r["txn_id"] for r in response.json()["items"]}

    assert await exported(min_amount="-31.00", max_amount="-10.00") == {ids[1], ids[2]}
    assert await exported(merchant="corner") == {ids[0], ids[1]}  # a part of the name, any case
    assert await exported(q="BISTRO") == {ids[4]}
    assert await exported(source="ledger") == await listed(source="ledger") != set()
    for name, value in (("min_amount", "-31.00"), ("merchant", "shop"), ("q", "place"), ("source", "csv")):
        assert await exported(**{name: value}) == await listed(**{name: value})
    response = await http.get(
        f"{V1}/download", headers=headers, params={"min_amount": "5.00", "max_amount": "-5.00", "format": "csv"}
    )
    assert response.status_code == 422, response.text
    response = await http.get(f"{V1}/download", headers=headers, params={"min_amount": "5.001", "format": "csv"})
    assert response.status_code == 422, response.text


async def test_another_member_sees_none_of_them_and_staff_change_nothing(http, member_rows, org):
    response = await http.get(
        f"{V1}/download",
        headers=member_rows["other_headers"],
        params={"member_id": member_rows["member"]["id"], "format": "json"},
    )
    assert response.status_code == 200 and response.json() == []
    # the org admin reads the organization's members' transactions (support)
    response = await http.get(
        f"{V1}/download", headers=org.headers["org_admin"], params={"member_id": member_rows["member"]["id"], **FEB}
    )
    assert response.status_code == 200 and len(list(csv.DictReader(io.StringIO(response.text)))) == 3
    assert_error(await http.get(f"{V1}/download", headers=member_rows["headers"], params={"format": "doc"}), 422)
    bad_range = {"date_from": "2026-03-01", "date_to": "2026-02-01"}
    assert_error(await http.get(f"{V1}/download", headers=member_rows["headers"], params=bad_range), 422)


def link_in(body: str) -> str:
    url = re.search(r"https?://\S+/file\?\S+", body)
    assert url, body
    parts = urlsplit(url.group(0).rstrip(".,)"))
    return f"{parts.path}?{parts.query}"


async def test_a_large_export_goes_to_the_background_and_notifies_once_with_a_signed_link(http, su, org, db, settings):
    member, headers = await make_user(http, su, "member", org.id)
    stranger = (await make_user(http, su, "member", org.id))[1]
    await plant(db, org.id, member["id"], [(f"2026-04-{d:02d}", f"-{d}.00", "shopping", "Shop") for d in range(1, 26)])
    error = assert_error(
        await http.get(f"{V1}/download", headers=headers, params={"format": "csv"}), 422, "export_too_large"
    )
    assert error["details"]["rows"] == 25 and error["details"]["limit"] == 20

    key = {**headers, "Idempotency-Key": uuid.uuid4().hex}
    response = await http.post(V1, headers=key, json={"format": "csv", "category": "shopping"})
    assert response.status_code == 202, response.text
    export = response.json()
    assert export["workflow_id"] == f"export-{export['id']}"
    again = await http.post(V1, headers=key, json={"format": "csv", "category": "shopping"})
    assert again.status_code == 200 and again.json()["id"] == export["id"]

    done = await poll(
        lambda: http.get(f"{V1}/{export['id']}", headers=headers),
        lambda r: r.json()["status"] != "queued",
        15,
        "the export",
    )
    assert done.json()["status"] == "ready" and done.json()["row_count"] == 25
    assert_error(await http.get(f"{V1}/{export['id']}", headers=stranger), 404)
    listed = (await http.get(V1, headers=headers)).json()["items"]
    assert [e["id"] for e in listed] == [export["id"]]

    notices = await poll(
        lambda: http.get("/api/v1/notifications", headers=headers),
        lambda r: any(n["entity_id"] == export["id"] for n in r.json()["items"]),
        10,
        "the export's notification",
    )
    mine = [n for n in notices.json()["items"] if n["entity_id"] == export["id"]]
    assert len(mine) == 1 and mine[0]["kind"] == "export_ready"
    link = link_in(mine[0]["body"])

    file = await http.get(link)  # no Authorization at all
    assert file.status_code == 200, file.text
    parsed = list(csv.DictReader(io.StringIO(file.text)))
    assert len(parsed) == 25 and {r["user_id"] for r in parsed} == {member["id"]}

    # The same in XLSX, made row by row in the background: read back with openpyxl through its own link.
    response = await http.post(
        V1, headers={**headers, "Idempotency-Key": uuid.uuid4().hex}, json={"format": "xlsx", "category": "shopping"}
    )
    xlsx = response.json()
    await poll(
        lambda: http.get(f"{V1}/{xlsx['id']}", headers=headers), lambda r: r.json()["status"] == "ready", 15, "xlsx"
    )
    notices = await poll(
        lambda: http.get("/api/v1/notifications", headers=headers),
        lambda r: any(n["entity_id"] == xlsx["id"] for n in r.json()["items"]),
        10,
        "the xlsx export's notification",
    )
    [notice] = [n for n in notices.json()["items"] if n["entity_id"] == xlsx["id"]]
    book = load_workbook(io.BytesIO((await http.get(link_in(notice["body"]))).content), read_only=True)
    assert len(list(book.active.iter_rows(values_only=True))) == 26  # the header and 25 rows

    query = parse_qs(urlsplit(link).query)
    signature, expires = query["signature"][0], int(query["expires"][0])
    tampered = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    path = f"{V1}/{export['id']}/file"
    assert_error(await http.get(path, params={"expires": expires, "signature": tampered}), 403, "invalid_link")
    assert_error(await http.get(path, params={"expires": expires + 60, "signature": signature}), 403, "invalid_link")
    past = int((datetime.now(UTC) - timedelta(minutes=1)).timestamp())
    expired = export_links.signature(settings, uuid.UUID(export["id"]), past)
    assert_error(await http.get(path, params={"expires": past, "signature": expired}), 403, "invalid_link")


PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"


async def test_a_gdpr_export_holds_the_members_data_and_files_and_nothing_of_another(http, su, org, db):
    member, headers = await make_user(http, su, "member", org.id)
    other, other_headers = await make_user(http, su, "member", org.id)
    mine, theirs = PDF + b"MINE-" + uuid.uuid4().hex.encode(), PDF + b"THEIRS-" + uuid.uuid4().hex.encode()
    for who, h, content in ((member, headers, mine), (other, other_headers, theirs)):
        uploaded = await http.post(
            "/api/v1/documents",
            headers=h,
            data={"entity_type": "user", "entity_id": who["id"], "kind": "id_document"},
            files={"file": ("passport.pdf", content, "application/pdf")},
        )
        assert uploaded.status_code == 201, uploaded.text
    await open_account(http, su, org.id, member["id"], deposit="12.34")
    [txn] = await plant(db, org.id, member["id"], [("2026-05-01", "-3.21", "dining", "Mine Cafe")])
    await plant(db, org.id, other["id"], [("2026-05-01", "-6.54", "dining", "Theirs Cafe")])

    # Another member, and staff other than an org admin, may not ask for it.
    assert_error(
        await http.post(
            f"/api/v1/members/{member['id']}/gdpr-export", headers={**other_headers, "Idempotency-Key": "x1"}
        ),
        404,
    )
    operator = {**org.headers["operator"], "Idempotency-Key": uuid.uuid4().hex}
    assert_error(await http.post(f"/api/v1/members/{member['id']}/gdpr-export", headers=operator), 403)

    response = await http.post(
        f"/api/v1/members/{member['id']}/gdpr-export", headers={**headers, "Idempotency-Key": uuid.uuid4().hex}
    )
    assert response.status_code == 202, response.text
    export = response.json()
    assert export["workflow_id"] == f"gdpr-export-{export['id']}" and export["kind"] == "gdpr"
    done = await poll(
        lambda: http.get(f"{V1}/{export['id']}", headers=headers),
        lambda r: r.json()["status"] != "queued",
        20,
        "the GDPR export",
    )
    assert done.json()["status"] == "ready", done.json()
    notices = await poll(  # told in the workflow's next step, just after the file is ready
        lambda: http.get("/api/v1/notifications", headers=headers),
        lambda r: any(n["entity_id"] == export["id"] for n in r.json()["items"]),
        20,
        "the GDPR export's notification",
    )
    [notice] = [n for n in notices.json()["items"] if n["entity_id"] == export["id"]]
    file = await http.get(link_in(notice["body"]))
    assert file.status_code == 200 and file.headers["content-type"] == "application/zip"

    archive = zipfile.ZipFile(io.BytesIO(file.content))
    names = archive.namelist()
    everything = b"".join(archive.read(n) for n in names)
    assert json.loads(archive.read("profile.json"))[0]["email"] == member["email"]
    assert "password_hash" not in archive.read("profile.json").decode()
    assert txn in {t["txn_id"] for t in json.loads(archive.read("transactions.json"))}
    assert any(Decimal(str(p["amount"])) == Decimal("-12.34") for p in json.loads(archive.read("postings.json")))
    assert any(n.startswith("tables/") and n.endswith("ledger_accounts.json") for n in names)
    [doc] = [n for n in names if n.startswith("documents/") and n.endswith(".pdf")]
    assert archive.read(doc) == mine
    assert b"Mine Cafe" in everything
    assert other["id"].encode() not in everything and b"THEIRS-" not in everything and b"Theirs Cafe" not in everything

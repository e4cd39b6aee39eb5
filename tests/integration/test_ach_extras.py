"""ACH extras on the real stack: a window over the (small, for the test) per-file limits gives several valid files;
a notification of change corrects the external account once though the bank delivers it twice; a prenote goes
before the first debit to a new external account, and a returned prenote disables the account."""

import asyncio
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import text

from finance import nacha
from tests.conftest import bank_operations
from tests.integration.test_ach import pay, wait_status
from tests.polling import poll

FILED = {"pending_settlement", "settled", "completed"}


async def test_a_window_over_the_per_file_limits_gives_several_valid_files(
    http, su, ach_org, odfi, db, settings, monkeypatch
):
    # Five payments made within seconds land in at most two 10-second windows, so one holds three or more: over the
    # limit of two records (a 3-second window once spread them one or two a window on a loaded machine).
    monkeypatch.setattr(settings, "ach_file_max_records", 2)
    monkeypatch.setattr(settings, "ach_file_max_amount", Decimal("40.00"))
    monkeypatch.setattr(settings, "ach_window_interval", timedelta(seconds=10))
    admin = ach_org.headers["org_admin"]
    created = await asyncio.gather(
        *(pay(http, ach_org, "ach_debit", "20.00") for _ in range(3)),
        *(pay(http, ach_org, "ach_credit", "5.00") for _ in range(2)),
    )
    # Filed and uploaded: each payment has its trace number (the rest of its life is test_ach's).
    done = await asyncio.gather(*(wait_status(http, admin, p["id"], statuses=FILED) for p in created))
    async with db.session() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT f.id, f.window_id, f.sequence FROM ach_files f WHERE f.window_id IN "
                    "(SELECT window_id FROM payments WHERE id = ANY(:ids)) ORDER BY f.window_id, f.sequence"
                ),
                {"ids": [p["id"] for p in created]},
            )
        ).all()
    ops = await bank_operations(http, su)
    traces: list[str] = []
    for file_id, _, _ in rows:
        download = await http.get(f"/api/v1/ach/files/{file_id}", headers=ops)
        parsed = nacha.parse(download.text)  # every total, hash, count and the blocking checked
        assert parsed.entry_addenda_count <= 2 and parsed.total_debit + parsed.total_credit <= Decimal("40.00")
        assert all(b.service_class_code != nacha.ServiceClass.MIXED for b in parsed.batches)
        traces += [e.trace_number for _, e in parsed.iter_entries()]
    assert sorted(traces) == sorted(p["trace_number"] for p in done)  # each payment in one file, once
    per_window = [sequence for _, _, sequence in rows]
    assert max(per_window) >= 2, rows  # 5 payments in at most 2 windows, 2 a file: some window had several files
    # The bank received them all, as separate uploads.
    for p in done:
        received = (await odfi.get("/odfi/entries", params={"trace_number": p["trace_number"]})).json()["entries"]
        assert len(received) == 1


async def test_a_noc_corrects_the_external_account_once_though_delivered_twice(http, su, ach_org, odfi, db):
    admin, external = ach_org.headers["org_admin"], ach_org.external
    payment = await pay(http, ach_org, "ach_debit", "10.46")  # the sandbox answers with a NOC C06
    payment = await wait_status(http, admin, payment["id"])

    async def account() -> dict:
        return (await http.get(f"/api/v1/external-accounts/{external['id']}", headers=admin)).json()

    corrected = await poll(account, lambda a: a["account_type"] == "savings", 20, what=lambda a: a)
    assert corrected["account_number_masked"][-4:] == external["account_number_masked"][-3:] + "7"
    assert corrected["routing_number"] == external["routing_number"]

    events = (await odfi.get("/odfi/events", params={"trace_number": payment["trace_number"]})).json()["events"]
    noc = next(e for e in events if e["type"] == "entry.corrected")
    assert noc["payload"]["change_code"] == "C06" and noc["deliveries"] == 1
    again = await odfi.post(f"/odfi/events/{noc['event_id']}/redeliver")
    assert again.json()["deliveries"] == 2
    async with db.session() as session:
        audits = (
            await session.execute(
                text(
                    "SELECT before, after FROM audit_log WHERE entity_id = :x AND action = 'external_account.corrected'"
                ),
                {"x": external["id"]},
            )
        ).all()
        recorded = (
            (await session.execute(text("SELECT status FROM bank_events WHERE event_id = :e"), {"e": noc["event_id"]}))
            .scalars()
            .all()
        )
    assert len(audits) == 1 and recorded == ["applied"]
    before, after = audits[0]
    assert before["account_number"] == "****" + external["account_number_masked"][-4:]  # masked, never whole
    assert after["account_number"] == "****" + corrected["account_number_masked"][-4:]
    assert (before["account_type"], after["account_type"], after["change_code"]) == ("checking", "savings", "C06")
    # The next debit goes to the corrected account: a savings debit (37).
    second = await wait_status(http, admin, (await pay(http, ach_org, "ach_debit", "12.00"))["id"])
    received = (await odfi.get("/odfi/entries", params={"trace_number": second["trace_number"]})).json()["entries"]
    assert received[0]["transaction_code"] == 37 and received[0]["account_number"].endswith("7")


async def test_a_prenote_goes_before_the_first_debit_and_its_return_disables_the_account(
    http, su, ach_org, odfi, db, settings, monkeypatch
):
    monkeypatch.setattr(settings, "ach_prenote_wait", timedelta(seconds=1))
    admin = ach_org.headers["org_admin"]
    policy = await http.put(
        f"/api/v1/organizations/{ach_org.id}/ach-prenote-policy", headers=admin, json={"require_ach_prenote": True}
    )
    assert policy.status_code == 200 and policy.json()["require_ach_prenote"] is True, policy.text

    first = await wait_status(http, admin, (await pay(http, ach_org, "ach_debit", "30.00"))["id"])
    assert first["status"] == "completed", first
    async with db.session() as session:
        prenote = (
            await session.execute(
                text(
                    "SELECT n.status, n.trace_number, n.transaction_code, n.clears_at, w.cutoff_at AS debit_cutoff "
                    "FROM ach_prenotes n, payments p JOIN ach_windows w ON w.id = p.window_id "
                    "WHERE n.external_account_id = :x AND p.id = :p"
                ),
                {"x": ach_org.external["id"], "p": first["id"]},
            )
        ).one()
    assert prenote.status == "sent" and prenote.transaction_code == 28  # a checking debit prenote
    assert prenote.debit_cutoff >= prenote.clears_at  # the debit waited for the prenote's return window
    (entry,) = (await odfi.get("/odfi/entries", params={"trace_number": prenote.trace_number})).json()["entries"]
    assert entry["amount"] == "0.00" and entry["transaction_code"] == 28
    # The savings account's prenote comes back R03: the account is disabled and its first debit never goes. Meanwhile
    # a second debit to the checking account needs no second prenote.
    listed = (await http.get("/api/v1/external-accounts", headers=admin, params={"account_type": "savings"})).json()
    savings = next(a for a in listed["items"] if a["org_id"] == ach_org.id)
    await odfi.put("/odfi/_control", json={"prenote_return_code": "R03"})
    try:
        second = await pay(http, ach_org, "ach_debit", "31.00")
        ach_org.external = savings
        third = await pay(http, ach_org, "ach_debit", "32.00")
        second, failed = await asyncio.gather(
            wait_status(http, admin, second["id"], statuses=FILED), wait_status(http, admin, third["id"])
        )
    finally:
        await odfi.put("/odfi/_control", json={"prenote_return_code": None})
    async with db.session() as session:
        prenotes = (
            await session.execute(
                text("SELECT count(*) FROM ach_prenotes WHERE external_account_id = :x"),
                {"x": first["external_account_id"]},
            )
        ).scalar_one()
    assert prenotes == 1 and second["presentments"] == 1
    assert failed["status"] == "failed" and failed["failure_code"] == "account_unusable_at_cutoff", failed
    disabled = (await http.get(f"/api/v1/external-accounts/{savings['id']}", headers=admin)).json()
    assert disabled["status"] == "disabled"
    assert failed["trace_number"] is None

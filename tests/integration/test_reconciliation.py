"""Bank reconciliation on the real stack (domain/reconciliation.py, workflows/reconciliation.py): a camt.053 statement
of postings made through the API (deposits, a book transfer, an ACH debit through its whole lifecycle) plus planted
exceptions reconciles automatically except the exceptions; the operator's actions, the close, a re-import that
changes nothing, bad files that write nothing, and refusals that leave nothing in the workflow's history."""

import asyncio
import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import text
from temporalio.api.enums.v1 import EventType

from tests.bank_statement_files import Entry, bai2_statement, camt053, csv_statement
from tests.conftest import assert_error, make_org, make_user, open_account
from tests.integration.test_ach import pay, wait_status
from tests.polling import poll
from workflows.reconciliation import ReconciliationWorkflow

API = "/api/v1/reconciliations"


def keyed(headers: dict) -> dict:
    return {**headers, "Idempotency-Key": uuid.uuid4().hex}


async def deposit(http, su, account_id: str, amount: str, memo: str) -> None:
    response = await http.post(
        f"/api/v1/accounts/{account_id}/deposits", headers=keyed(su), json={"amount": amount, "memo": memo}
    )
    assert response.status_code == 201, response.text


async def entries_by_amount(http, su, account_id: str) -> dict[Decimal, dict]:
    items = (await http.get(f"/api/v1/accounts/{account_id}/entries?limit=500", headers=su)).json()["items"]
    return {Decimal(item["amount"]): item for item in items}


async def imported(http, headers, account_id: str, content: str, fmt: str = "camt053", status: int = 202) -> dict:
    body = {"account_id": account_id, "format": fmt, "content": content}
    response = await http.post(API, headers=keyed(headers), json=body)
    assert response.status_code == status, response.text
    return response.json()


async def open_for_actions(http, headers, reconciliation_id: str) -> dict:
    return await poll(
        lambda: http.get(f"{API}/{reconciliation_id}", headers=headers),
        lambda r: r.status_code == 200 and r.json()["status"] == "open",
        60,
        "the automatic matching never finished",
    )


async def act(http, headers, reconciliation_id: str, **body):
    return await http.post(f"{API}/{reconciliation_id}/actions", headers=headers, json=body)


async def updates_in_history(temporal_env, workflow_id: str) -> int:
    history = await temporal_env.client.get_workflow_handle(workflow_id).fetch_history()
    return sum(1 for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)


async def test_a_camt053_statement_reconciles_all_but_the_planted_exceptions_then_closes_once(
    http, su, ach_org, odfi, db, temporal_env
):
    org, account = ach_org, ach_org.account
    operator = org.headers["operator"]
    savings = await open_account(http, su, org.id, org.users["member"]["id"], type_="savings")
    # The ledger side: an ACH debit through its whole lifecycle (its trace number), deposits, a book transfer.
    payment = await wait_status(http, org.headers["org_admin"], (await pay(http, org, "ach_debit", "125.37"))["id"])
    assert payment["status"] == "completed", payment
    await deposit(http, su, account["id"], "310.17", "Cash deposit branch 7")
    await deposit(http, su, account["id"], "200.00", "Deposit slip 4411")  # the bank credits 20.00: a mismatch
    await deposit(http, su, account["id"], "60.00", "Cheque 1001")  # these two: one bank line of 100.00 (a split)
    await deposit(http, su, account["id"], "40.00", "Cheque 1002")
    transfer = await http.post(
        "/api/v1/transfers/book",
        headers=keyed(org.headers["member"]),
        json={
            "from_account_id": account["id"],
            "to_account_id": savings["id"],
            "amount": "42.50",
            "memo": "To savings",
        },
    )
    assert transfer.status_code == 201, transfer.text
    ledger = await entries_by_amount(http, su, account["id"])
    day = date.fromisoformat(ledger[Decimal("-310.17")]["effective_date"])

    statement = camt053(
        f"STMT-{uuid.uuid4().hex[:10]}",
        [
            Entry(Decimal("10000.00"), day, "Cash deposit", "", "Member"),
            Entry(Decimal("125.37"), day, "ACH DEBIT PPD", payment["trace_number"], "First Platypus Bank"),
            Entry(Decimal("310.17"), day, "CASH DEPOSIT BRANCH 7", "", ""),
            Entry(Decimal("-42.50"), day, "Book transfer to savings", "", ""),
            Entry(Decimal("20.00"), day, "Deposit slip 4411", "", ""),  # planted: the ledger has 200.00
            Entry(Decimal("-15.00"), day, "Monthly service fee", "", "The Bank"),  # planted: no posting at all
            Entry(Decimal("100.00"), day, "Cheques deposited", "", ""),  # the two cheques, as one line
        ],
        opening=Decimal("0.00"),
    )
    # A member never reconciles; another organization's staff do not see the account.
    assert_error(
        await http.post(
            API,
            headers=keyed(org.headers["member"]),
            json={"account_id": account["id"], "format": "camt053", "content": statement},
        ),
        403,
    )
    stranger = await make_org(http, su, roles=("org_admin",))
    assert_error(
        await http.post(
            API,
            headers=keyed(stranger.headers["org_admin"]),
            json={"account_id": account["id"], "format": "camt053", "content": statement},
        ),
        404,
    )

    created = await imported(http, operator, account["id"], statement)
    rec_id, workflow_id = created["id"], created["workflow_id"]
    assert workflow_id.startswith(f"reconciliation-{account['id']}-STMT-") and created["line_count"] == 7
    view = (await open_for_actions(http, operator, rec_id)).json()
    assert (view["matched_lines"], view["open_lines"], view["explained_lines"]) == (4, 3, 0), view

    report = (await http.get(f"{API}/{rec_id}/report", headers=operator)).json()
    summary = report["summary"]
    assert (summary["matched_by_trace"], summary["matched_by_score"]) == (1, 3), summary
    by_line = {line["line_no"]: line for line in report["matched"]}
    trace_line = by_line[2]
    assert trace_line["matches"][0]["kind"] == "trace" and trace_line["reference"] == payment["trace_number"]
    assert trace_line["matches"][0]["entry_id"] == ledger[Decimal("-125.37")]["entry_id"]
    assert by_line[3]["matches"][0]["entry_id"] == ledger[Decimal("-310.17")]["entry_id"]
    assert by_line[4]["matches"][0]["entry_id"] == ledger[Decimal("42.50")]["entry_id"]
    assert {line["line_no"] for line in report["unmatched"]} == {5, 6, 7}
    unmatched_entries = {p["entry_id"] for p in report["unmatched_postings"]}
    assert {ledger[Decimal(a)]["entry_id"] for a in ("-200.00", "-60.00", "-40.00")} <= unmatched_entries
    progress = await temporal_env.client.get_workflow_handle(workflow_id).query(ReconciliationWorkflow.progress)
    assert (progress.phase, progress.open, progress.matched) == ("open", 3, 4)

    # Close is refused while lines are open, with their count.
    error = assert_error(await http.post(f"{API}/{rec_id}/close", headers=operator), 409, "lines_open")
    assert error["details"] == {"open_lines": 3}

    # The mismatch cannot be matched to the 200.00 deposit, nor to a posting another line has.
    mismatch = ledger[Decimal("-200.00")]["entry_id"]
    error = assert_error(await act(http, operator, rec_id, action="match", line_no=5, entry_ids=[mismatch]), 422)
    assert error["code"] == "amount_mismatch" and error["details"]["postings_total"] == "-200.00"
    taken = ledger[Decimal("-125.37")]["entry_id"]
    assert_error(
        await act(http, operator, rec_id, action="match", line_no=5, entry_ids=[taken]), 409, "posting_already_matched"
    )
    assert_error(
        await act(http, operator, rec_id, action="split", line_no=7, entry_ids=[mismatch]), 422, "entries_required"
    )
    assert_error(
        await act(http, operator, rec_id, action="explain", line_no=99, reason_code="bank_fee"), 422, "unknown_line"
    )
    assert_error(await act(http, operator, rec_id, action="explain", line_no=6), 422, "reason_required")
    accepted = await updates_in_history(temporal_env, workflow_id)

    # The operator: the fee explained, the mismatch explained, the cheques split, a score match redone by hand.
    fee = await act(http, operator, rec_id, action="explain", line_no=6, reason_code="bank_fee", note="November fee")
    assert fee.status_code == 200, fee.text
    assert (
        await act(
            http,
            org.headers["org_admin"],
            rec_id,
            action="explain",
            line_no=5,
            reason_code="amount_mismatch",
            note="Bank credited 20.00 for slip 4411: ticket 88",
        )
    ).status_code == 200
    cheques = [ledger[Decimal("-60.00")]["entry_id"], ledger[Decimal("-40.00")]["entry_id"]]
    split = await act(http, operator, rec_id, action="split", line_no=7, entry_ids=cheques)
    assert split.status_code == 200, split.text
    assert (await act(http, operator, rec_id, action="unmatch", line_no=3)).status_code == 200
    redo = await act(
        http, operator, rec_id, action="match", line_no=3, entry_ids=[ledger[Decimal("-310.17")]["entry_id"]]
    )
    assert redo.status_code == 200 and redo.json()["open"] == 0, redo.text
    assert await updates_in_history(temporal_env, workflow_id) == accepted + 5

    # The workflow's validator refuses an action on a line in the wrong state: a 409, and nothing in history.
    assert_error(
        await act(http, operator, rec_id, action="explain", line_no=6, reason_code="other"), 409, "line_not_open"
    )
    assert_error(await act(http, operator, rec_id, action="unmatch", line_no=99), 422, "unknown_line")
    assert await updates_in_history(temporal_env, workflow_id) == accepted + 5

    closed = await http.post(f"{API}/{rec_id}/close", headers=operator)
    assert closed.status_code == 200 and closed.json()["phase"] == "closed", closed.text
    result = await temporal_env.client.get_workflow_handle_for(ReconciliationWorkflow.run, workflow_id).result()
    assert (result.matched, result.explained, result.open) == (5, 2, 0)
    final = (await http.get(f"{API}/{rec_id}/report", headers=operator)).json()
    assert final["reconciliation"]["status"] == "closed"
    assert [(e["line_no"], e["reason_code"]) for e in final["exceptions"]] == [(5, "amount_mismatch"), (6, "bank_fee")]
    assert final["summary"]["matched_by_operator"] == 2 and final["summary"]["open"] == 0
    assert {m["kind"] for m in next(x for x in final["matched"] if x["line_no"] == 7)["matches"]} == {"split"}
    csv_report = await http.get(f"{API}/{rec_id}/report?format=csv", headers=operator)
    assert csv_report.status_code == 200 and "Monthly service fee" in csv_report.text

    # After the close: every action refused, the history untouched, the close itself refused again.
    history_length = len((await temporal_env.client.get_workflow_handle(workflow_id).fetch_history()).events)
    assert_error(await act(http, operator, rec_id, action="unmatch", line_no=2), 409, "reconciliation_closed")
    assert_error(await http.post(f"{API}/{rec_id}/close", headers=operator), 409, "reconciliation_closed")
    assert len((await temporal_env.client.get_workflow_handle(workflow_id).fetch_history()).events) == history_length

    # The same statement again: the same reconciliation, no new line, no new run.
    run_id = (await temporal_env.client.get_workflow_handle(workflow_id).describe()).run_id
    again = await imported(http, su, account["id"], statement, status=200)
    assert again["id"] == rec_id and again["status"] == "closed"
    assert (await temporal_env.client.get_workflow_handle(workflow_id).describe()).run_id == run_id
    async with db.session() as session:
        lines = (
            await session.execute(
                text("SELECT count(*) FROM reconciliation_lines WHERE reconciliation_id = :id"), {"id": rec_id}
            )
        ).scalar_one()
        audited = (
            (
                await session.execute(
                    text(
                        "SELECT action FROM audit_log WHERE entity_type = 'reconciliation' AND entity_id = :id "
                        "ORDER BY id"
                    ),
                    {"id": rec_id},
                )
            )
            .scalars()
            .all()
        )
    assert lines == 7
    assert audited == [
        "reconciliation.imported",
        "reconciliation.explain",
        "reconciliation.explain",
        "reconciliation.split",
        "reconciliation.unmatch",
        "reconciliation.match",
        "reconciliation.closed",
    ]
    # The same identity with other content is a conflict, not a second statement.
    altered = statement.replace("Monthly service fee", "Monthly service fees")
    assert_error(
        await http.post(
            API, headers=keyed(su), json={"account_id": account["id"], "format": "camt053", "content": altered}
        ),
        409,
        "statement_id_reused",
    )

    # Who sees it: the organization's staff and the bank-wide roles; another organization's staff a 404.
    assert_error(await http.get(f"{API}/{rec_id}", headers=stranger.headers["org_admin"]), 404)
    assert_error(await http.get(f"{API}/{rec_id}", headers=org.headers["member"]), 403)
    listed = (await http.get(f"{API}?account_id={account['id']}&status=closed", headers=operator)).json()
    assert [item["id"] for item in listed["items"]] == [rec_id]
    assert (await http.get(f"{API}?account_id={account['id']}", headers=stranger.headers["org_admin"])).json()[
        "total"
    ] == 0


async def test_bad_files_are_422_with_a_clear_code_and_write_nothing(http, su, db):
    org = await make_org(http, su)
    account = await open_account(http, su, org.id, org.users["member"]["id"])
    day = date(2026, 11, 30)
    good = [Entry(Decimal("12.34"), day, "x")]
    cases = {
        "not_camt053": ("camt053", camt053("S", good, namespace="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08")),
        "invalid_xml": ("camt053", "<Document>"),
        "unsafe_xml": (
            "camt053",
            '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><d>&e;</d>',
        ),
        "currency_mismatch": ("camt053", camt053("S", good, currency="EUR")),
        "balances_do_not_add_up": (
            "camt053",
            camt053("S", good).replace(
                ">12.34</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt>", ">12.35</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt>"
            ),
        ),
        "missing_columns": ("csv", "when,how much\n2026-11-30,1.00\n"),
        "invalid_amount": ("csv", "date,amount\n2026-11-30,1.005\n"),
        "invalid_date": ("csv", "date,amount\n2026-02-30,1.00\n"),
        "statement_empty": ("csv", "date,amount\n"),
        "invalid_bai2": ("bai2", bai2_statement("F1", good).replace("49,", "49,9", 1)),  # a control total off
    }
    for code, (fmt, content) in cases.items():
        response = await http.post(
            API, headers=keyed(su), json={"account_id": account["id"], "format": fmt, "content": content}
        )
        assert_error(response, 422, code)
    assert_error(
        await http.post(API, headers=keyed(su), json={"account_id": account["id"], "format": "mt940", "content": "x"}),
        422,
        "validation_error",
    )
    assert_error(
        await http.post(
            API,
            headers=keyed(su),
            json={"account_id": str(uuid.uuid4()), "format": "csv", "content": csv_statement(good)},
        ),
        404,
    )
    async with db.session() as session:
        written = (
            await session.execute(
                text("SELECT count(*) FROM reconciliations WHERE account_id = :a"), {"a": account["id"]}
            )
        ).scalar_one()
    assert written == 0


async def test_a_csv_statement_of_the_gl_cash_account_is_the_bank_roles_own(http, su, db):
    """GL cash at bank: a deposit debits it (money in at the bank is a debit of an asset). Org staff cannot reconcile
    it (a 404: they do not see GL accounts); bank operations can, and an action racing another on the same line is
    refused without a second effect."""
    org = await make_org(http, su)
    account = await open_account(http, su, org.id, org.users["member"]["id"])
    amount = f"{7000 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 100:02d}"
    await deposit(http, su, account["id"], amount, f"Teller {uuid.uuid4().hex[:6]}")
    async with db.session() as session:
        cash_id = str(
            (
                await session.execute(
                    text("SELECT id FROM ledger_accounts WHERE code = 'GL-CASH' AND currency = 'USD'")
                )
            ).scalar_one()
        )
    ours = await entries_by_amount(http, su, account["id"])
    day = date.fromisoformat(ours[-Decimal(amount)]["effective_date"])
    statement = csv_statement([Entry(Decimal(amount), day, "Teller deposit")])
    assert_error(
        await http.post(
            API,
            headers=keyed(org.headers["org_admin"]),
            json={"account_id": cash_id, "format": "csv", "content": statement},
        ),
        404,
    )
    _ops, ops_headers = await make_user(http, su, "bank_operations", None)
    created = await imported(http, ops_headers, cash_id, statement, fmt="csv")
    assert created["statement_ref"].startswith("csv-") and created["org_id"] is None
    view = (await open_for_actions(http, ops_headers, created["id"])).json()
    assert view["matched_lines"] == 1 and view["open_lines"] == 0
    report = (await http.get(f"{API}/{created['id']}/report", headers=ops_headers)).json()
    match = report["matched"][0]["matches"][0]
    assert match["entry_id"] == ours[-Decimal(amount)]["entry_id"] and Decimal(match["amount"]) == Decimal(amount)
    assert_error(await http.get(f"{API}/{created['id']}", headers=org.headers["org_admin"]), 404)

    # Two unmatches of the same line at once: one takes effect, the other is refused (the line is open by then).
    rec_id = created["id"]
    first, second = await asyncio.gather(
        act(http, ops_headers, rec_id, action="unmatch", line_no=1),
        act(http, ops_headers, rec_id, action="unmatch", line_no=1),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409], (first.text, second.text)
    # Re-imported while open: the same reconciliation, its workflow still the one running.
    again = await imported(http, ops_headers, cash_id, statement, fmt="csv", status=200)
    assert again["id"] == rec_id and again["open_lines"] == 1

    # Matched again by hand, then a close racing an unmatch: whichever wins, a closed reconciliation has no open line.
    entry_id = ours[-Decimal(amount)]["entry_id"]  # the deposit's entry: its GL cash leg is the posting matched
    assert (await act(http, ops_headers, rec_id, action="match", line_no=1, entry_ids=[entry_id])).status_code == 200
    close, unmatch = await asyncio.gather(
        http.post(f"{API}/{rec_id}/close", headers=ops_headers),
        act(http, ops_headers, rec_id, action="unmatch", line_no=1),
    )
    assert sorted([close.status_code, unmatch.status_code]) == [200, 409], (close.text, unmatch.text)
    view = (await http.get(f"{API}/{rec_id}", headers=ops_headers)).json()
    if close.status_code == 200:
        assert unmatch.json()["error"]["code"] == "reconciliation_closed"
        assert (view["status"], view["open_lines"], view["matched_lines"]) == ("closed", 0, 1)
    else:
        assert close.json()["error"]["code"] == "lines_open"
        assert (view["status"], view["open_lines"]) == ("open", 1)

    # BAI2, of the organization's own account, by its operator: the same deposit's other leg, matched by score.
    bai2 = bai2_statement(f"F{uuid.uuid4().hex[:8]}", [Entry(Decimal(amount), day, "Teller deposit")])
    of_account = await imported(http, org.headers["operator"], account["id"], bai2, fmt="bai2")
    assert of_account["statement_ref"].startswith("bai2-") and of_account["org_id"] == org.id
    view = (await open_for_actions(http, org.headers["operator"], of_account["id"])).json()
    assert (view["matched_lines"], view["open_lines"]) == (1, 0), view
    report = (await http.get(f"{API}/{of_account['id']}/report", headers=org.headers["operator"])).json()
    assert report["matched"][0]["matches"][0]["entry_id"] == ours[-Decimal(amount)]["entry_id"]
    assert report["matched"][0]["matches"][0]["kind"] == "score"

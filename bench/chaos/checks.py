"""The verdict: every check reads the end state where it is kept (Postgres, Temporal's visibility, the sandbox
bank's record of what it received, the mail sink's files) and names what it found wrong, a few examples each."""

import asyncio
import email.parser
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
from temporalio.client import Client

from bench.chaos.load import BILL_RUN_ID, MONTH_END_ID
from bench.chaos.scenarios import ACH_SCENARIOS, net_effect
from bench.chaos.setup import BILL_DAY, World
from bench.interest_posting import FIRST, LAST, PERIOD
from core.db import libpq_url
from core.search_attributes import LOAN_STATUS
from finance.money import round_money

FINAL_PAYMENT = ("completed", "canceled", "failed", "returned", "reversed")
SCENARIOS = {s.name: s for s in ACH_SCENARIOS}
EXAMPLES = 3


@dataclass
class Verdict:
    failures: list[str] = field(default_factory=list)
    figures: dict[str, int] = field(default_factory=dict)

    def expect(self, wrong: list, what: str) -> None:
        if wrong:
            shown = "; ".join(str(w) for w in wrong[:EXAMPLES])
            self.failures.append(f"{what}: {len(wrong)} ({shown}{' …' if len(wrong) > EXAMPLES else ''})")


async def rows(conn: psycopg.AsyncConnection, sql: str, params: dict | None = None) -> list[tuple]:
    return await (await conn.execute(sql, params or {})).fetchall()


async def outstanding(conn: psycopg.AsyncConnection, client: Client, scope: str, world: World) -> dict[str, int]:
    """What has not ended yet, by kind (empty once every process has): the run waits for this before judging."""
    [counts] = await rows(
        conn,
        "SELECT (SELECT count(*) FROM payments WHERE status <> ALL(%(final)s)),"
        " (SELECT count(*) FROM loans WHERE status NOT IN ('closed','declined','rejected','on_hold','withdrawn','failed')),"
        " (SELECT count(*) FROM bills WHERE status = 'processing'),"
        " (SELECT count(*) FROM email_outbox WHERE status = 'pending'),"
        " 1 - (SELECT count(*) FROM interest_posting_runs WHERE period = %(period)s)",
        {"final": list(FINAL_PAYMENT), "period": PERIOD},
    )
    left = dict(zip(("payments", "loans", "bills", "emails", "posting"), counts, strict=True))
    left["loans not applied"] = sum(1 for case in world.loans if not case.loan_id)
    left["workflows"] = len(await still_running(conn, client, scope))
    return {what: n for what, n in left.items() if n}


async def still_running(conn: psycopg.AsyncConnection, client: Client, scope: str) -> list[tuple[str, str]]:
    """The workflows still running but the bank-event sweep and the webhook dispatcher (they always do), and the closed loans and the
    auto-pays of bills no longer processing, which listen out their payments' late-return windows (with a minute
    of slack for the auto-pay) as they are meant to."""
    listening = {
        f"bill-autopay-{bill}-{BILL_DAY}"
        for (bill,) in await rows(conn, "SELECT id FROM bills WHERE autopay AND status <> 'processing'")
    }
    return [
        (w.workflow_type, w.id)
        async for w in client.list_workflows(f"{scope} AND ExecutionStatus = 'Running'")
        if w.id != "bank-event-sweep"
        and not w.id.startswith("webhook-dispatch")  # the webhook outbox's dispatcher: it always runs, like the sweep
        and w.id not in listening
        and not (w.workflow_type == "LoanWorkflow" and w.typed_search_attributes.get(LOAN_STATUS) == "closed")
    ]


async def ach_payments(conn, world: World, verdict: Verdict) -> None:
    found = {
        key: row
        for key, *row in await rows(
            conn,
            "SELECT p.idempotency_key, p.status, p.presentments, p.return_code, e.status, e.debits_blocked "
            "FROM payments p JOIN external_accounts e ON e.id = p.external_account_id "
            "WHERE p.idempotency_key LIKE 'chaos-%%'",
        )
    }
    wrong = []
    for key, name, _, _ in world.payments:
        s = SCENARIOS[name]
        expected = [
            s.status,
            s.presentments,
            s.return_code,
            "disabled" if s.external == "disabled" else "verified",
            s.external == "debits_blocked",
        ]
        row = found.get(key)
        if row != expected and not (s.late and row == [s.late, *expected[1:]]):
            wrong.append(f"{key}: {row} != {expected}")
    verdict.expect(wrong, "ACH payments not in their scenario's final state")
    verdict.figures["payments"] = len(world.payments)


async def every_payment(conn, verdict: Verdict) -> None:
    stuck = await rows(
        conn, "SELECT id, kind, status FROM payments WHERE status <> ALL(%(f)s)", {"f": list(FINAL_PAYMENT)}
    )
    verdict.expect(stuck, "payments stuck before a final status")
    # What each finished ACH payment left on its internal account, against what its final status says.
    effects = await rows(
        conn,
        "SELECT p.id, p.kind, p.status, p.amount, coalesce(sum(po.amount), 0) FROM payments p "
        "LEFT JOIN journal_entries j ON j.payment_id = p.id "
        "LEFT JOIN postings po ON po.entry_id = j.id "
        "  AND po.account_id = CASE p.kind WHEN 'ach_debit' THEN p.to_account_id ELSE p.from_account_id END "
        "WHERE p.kind <> 'book' GROUP BY p.id",
    )
    # Postings are signed from the account's side: money in is negative on a credit-normal member account.
    wrong = [
        (pid, kind, status, amount, net)
        for pid, kind, status, amount, net in effects
        if -net != net_effect(kind, status, amount)
    ]
    verdict.expect(wrong, "payments whose net effect on their account does not match their final status")
    holds = await rows(
        conn,
        "SELECT p.id, p.status, h.amount FROM holds h JOIN payments p ON split_part(h.idempotency_key, ':', 2) = p.id::text "
        "WHERE h.idempotency_key LIKE 'payment:%%' AND h.status = 'active' AND p.status = ANY(%(f)s)",
        {"f": list(FINAL_PAYMENT)},
    )
    verdict.expect(holds, "active holds left on finished payments")


async def loans(conn, world: World, verdict: Verdict) -> None:
    found = await rows(
        conn,
        "SELECT l.id, l.status, l.auto_debit, "
        " (SELECT coalesce(sum(amount), 0) FROM postings WHERE account_id = l.loan_account_id), "
        " (SELECT count(*) FROM loan_installments i WHERE i.loan_id = l.id AND i.paid_at IS NULL), "
        " (SELECT count(*) FROM loan_installments i JOIN payments d ON d.id = i.auto_debit_payment_id "
        "   WHERE i.loan_id = l.id AND d.status = 'completed') "
        "FROM loans l WHERE l.id = ANY(%(ids)s)",
        {"ids": [uuid.UUID(c.loan_id) for c in world.loans if c.loan_id]},
    )
    wrong = [row for row in found if row[1] != "closed" or row[3] != 0 or row[4] != 0 or (row[2] and row[5] == 0)]
    verdict.expect([c.member_id for c in world.loans if not c.loan_id], "loans never applied for")
    verdict.expect(wrong, "loans not closed, paid and auto-debited (id, status, auto, loan balance, unpaid, debits)")
    verdict.figures["loans"] = len(found)


async def bills(conn, world: World, verdict: Verdict) -> None:
    found = dict(
        await rows(
            conn,
            "SELECT id::text, status FROM bills WHERE id = ANY(%(ids)s)",
            {"ids": [uuid.UUID(b) for b in world.bills]},
        )
    )
    wrong = [
        f"{bill}: {found.get(bill)} != {status}" for bill, status in world.bills.items() if found.get(bill) != status
    ]
    verdict.expect(wrong, "bills not in their auto-pay's final state")
    verdict.figures["bills"] = len(world.bills)


async def interest(conn, verdict: Verdict) -> None:
    accrued = await rows(
        conn,
        "SELECT account_id, sum(amount) FROM interest_accruals WHERE day BETWEEN %(first)s AND %(last)s GROUP BY 1",
        {"first": FIRST, "last": LAST},
    )
    expected = {a: round_money(total) for a, total in accrued if round_money(total) > 0}
    posted = await rows(
        conn,
        "SELECT ip.account_id, ip.amount, (SELECT count(*) FROM interest_postings o "
        "  WHERE o.account_id = ip.account_id AND o.period = ip.period) FROM interest_postings ip WHERE ip.period = %(p)s",
        {"p": PERIOD},
    )
    got = {a: amount for a, amount, _ in posted}
    wrong = [
        f"{a}: posted {got.get(a)}, accrued {expected.get(a)}"
        for a in expected.keys() | got.keys()
        if got.get(a) != expected.get(a)
    ]
    wrong += [f"{a}: posted {n} times" for a, _, n in posted if n != 1]
    [(entries,)] = await rows(
        conn, "SELECT count(*) FROM journal_entries WHERE idempotency_key LIKE %(k)s", {"k": f"interest:{PERIOD}:%"}
    )
    if entries != len(expected):
        wrong.append(f"{entries} interest journal entries for {len(expected)} accounts")
    verdict.expect(wrong, f"month-end interest posting of {PERIOD} not once per account at its accrued amount")
    verdict.figures["savings_accounts"] = len(accrued)


async def ledger(conn, verdict: Verdict) -> None:
    unbalanced = await rows(conn, "SELECT entry_id, sum(amount) FROM postings GROUP BY 1 HAVING sum(amount) <> 0")
    verdict.expect(unbalanced, "journal entries that do not balance")
    [(total, entries)] = await rows(conn, "SELECT coalesce(sum(amount), 0), count(DISTINCT entry_id) FROM postings")
    if total != 0:
        verdict.failures.append(f"the ledger's total is {total}, not 0")
    verdict.figures["journal_entries"] = entries


async def bank_entries(conn, sandbox_url: str, verdict: Verdict) -> None:
    """Each presentment the books say reached the bank is one entry the bank received once, and the bank
    received nothing else."""
    ours = {
        trace: (payment, presentment, amount)
        for trace, payment, presentment, amount in await rows(
            conn,
            "SELECT e.trace_number, e.payment_id, e.presentment, e.amount FROM ach_entries e "
            "JOIN ach_files f ON f.id = e.file_id WHERE NOT e.rejected AND f.status = 'uploaded'",
        )
    }
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=60) as sandbox:
        theirs = {e["trace_number"]: e for e in (await sandbox.get("/odfi/entries")).json()["entries"]}
    wrong = [f"{t}: not at the bank" for t in ours.keys() - theirs.keys()]
    wrong += [f"{t}: at the bank, not in our books" for t in theirs.keys() - ours.keys()]
    wrong += [f"{t}: received {e['received_count']} times" for t, e in theirs.items() if e["received_count"] != 1]
    wrong += [
        f"{t}: {theirs[t]['amount']} at the bank, {ours[t][2]} ours"
        for t in ours.keys() & theirs.keys()
        if Decimal(theirs[t]["amount"]) != ours[t][2]
    ]
    per_presentment = Counter((payment, presentment) for payment, presentment, _ in ours.values())
    wrong += [f"payment {p} presentment {n}: {c} entries" for (p, n), c in per_presentment.items() if c != 1]
    presentments = dict(await rows(conn, "SELECT id, presentments FROM payments WHERE kind <> 'book'"))
    sent = Counter(payment for payment, _ in per_presentment)
    wrong += [
        f"payment {p}: {sent.get(p, 0)} entries at the bank, {n} presentments"
        for p, n in presentments.items()
        if sent.get(p, 0) != n
    ]
    verdict.expect(wrong, "bank entries not received exactly once per presentment")
    verdict.figures["bank_entries"] = len(theirs)


def message_ids(mail_dir: Path) -> Counter[str]:
    """How many times the sink received each Message-ID (its local part: the outbox row's id)."""
    parser = email.parser.BytesHeaderParser()
    received: Counter[str] = Counter()
    for path in mail_dir.glob("*.eml"):
        message_id = parser.parsebytes(path.read_bytes())["Message-ID"] or ""
        received[message_id.strip("<>").split("@", 1)[0]] += 1
    return received


async def emails(conn, mail_dir: Path, verdict: Verdict) -> None:
    """Every email of the outbox reached the SMTP sink once (by its Message-ID, the outbox row's id)."""
    outbox = {str(i): status for i, status in await rows(conn, "SELECT id, status FROM email_outbox")}
    received = await asyncio.to_thread(message_ids, mail_dir)
    wrong = [f"{i}: {status}" for i, status in outbox.items() if status != "sent"]
    wrong += [f"{i}: received {received[i]} times" for i in outbox if received[i] != 1 and outbox[i] == "sent"]
    wrong += [f"{i}: not in the outbox" for i in received.keys() - outbox.keys()]
    verdict.expect(wrong, "emails not sent exactly once")
    verdict.figures["emails"] = len(outbox)


async def workflows(conn: psycopg.AsyncConnection, client: Client, scope: str, verdict: Verdict) -> None:
    """None stuck (still_running), nothing ended failed, timed out or terminated."""
    verdict.expect(await still_running(conn, client, scope), "workflows still running")
    broken = [
        (w.workflow_type, w.id, w.status.name if w.status else "?")
        async for w in client.list_workflows(
            f"{scope} AND ExecutionStatus IN ('Failed', 'Terminated', 'TimedOut', 'Canceled')"
        )
    ]
    verdict.expect(broken, "workflows that ended without completing")
    for workflow_id in (BILL_RUN_ID, MONTH_END_ID):
        status = (await client.get_workflow_handle(workflow_id).describe()).status
        if status is None or status.name != "COMPLETED":
            verdict.failures.append(f"{workflow_id} is {status}")
    verdict.figures["workflows"] = (await client.count_workflows(scope)).count


async def judge(
    database_url: str, client: Client, scope: str, sandbox_url: str, mail_dir: Path, world: World
) -> Verdict:
    verdict = Verdict()
    async with await psycopg.AsyncConnection.connect(libpq_url(database_url), autocommit=True) as conn:
        await ach_payments(conn, world, verdict)
        await every_payment(conn, verdict)
        await loans(conn, world, verdict)
        await bills(conn, world, verdict)
        await interest(conn, verdict)
        await ledger(conn, verdict)
        await bank_entries(conn, sandbox_url, verdict)
        await emails(conn, mail_dir, verdict)
        await workflows(conn, client, scope, verdict)
    return verdict

"""A bank reconciliation's steps on Postgres (workflows/reconciliation.py): load the statement's lines, the automatic
matching passes (set-based SQL), the operator's actions, and the close.

Matching compares a line's `ledger_amount` (its amount as a posting on the reconciled account: money in is a debit of
a debit-normal account such as cash at bank, a credit of a deposit account) with the account's postings:

1. **trace**: the line's reference is the trace number of an ACH entry (ach_entries, every presentment) whose
   payment's journal entry has a posting of that amount on the account, dated within the window;
2. **score**: the same amount within the window, scored 0.6 x the share of words the line's description and
   counterparty have in common with the entry's description and the payment's memo (recon_word_similarity,
   migration 0030) + 0.4 x how close the dates are (1 the same day, falling to 0 past the window); a pair scoring at
   least the minimum matches.

Each pass pairs a line and a posting only when each is the other's best candidate (so a tie never matches the same
posting twice, and the order of the rows does not decide), and repeats until it pairs nothing more. A posting is
matched once, ever: the unique posting_id of reconciliation_matches, ON CONFLICT DO NOTHING.

Every step is idempotent: a worker killed inside one retries it to the same rows."""

import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core import audit
from core.config import Settings
from core.db import Database
from finance.bank_statements import StatementFormat, parse
from models.reconciliation import (
    ActionInput,
    AutoMatchInput,
    CloseRequest,
    LineState,
    LineStatus,
    MatchKind,
    ReconciliationInput,
    ReconciliationSnapshot,
    ReconciliationStatus,
)

MAX_ROUNDS = 50  # a pass repeats while it pairs something; each round pairs at least one line, so this is a bound

TRACE_CANDIDATES = """
    SELECT l.id AS line_id, p.id AS posting_id, 1.0 AS score, abs(e.effective_date - l.value_date) AS days
    FROM reconciliation_lines l
    JOIN ach_entries ae ON ae.trace_number = l.reference
    JOIN journal_entries e ON e.payment_id = ae.payment_id
    JOIN postings p ON p.entry_id = e.id AND p.account_id = :account AND p.amount = l.ledger_amount
    WHERE l.reconciliation_id = :rec AND l.status = 'open' AND l.reference <> ''
      AND e.effective_date BETWEEN l.value_date - :window AND l.value_date + :window
      AND NOT EXISTS (SELECT 1 FROM reconciliation_matches m WHERE m.posting_id = p.id)
"""

SCORE_CANDIDATES = """
    SELECT line_id, posting_id, score, days FROM (
        SELECT l.id AS line_id, p.id AS posting_id, abs(e.effective_date - l.value_date) AS days,
               round(0.6 * recon_word_similarity(l.description || ' ' || l.counterparty,
                                                 e.description || ' ' || coalesce(pay.memo, ''))
                     + 0.4 * (1 - abs(e.effective_date - l.value_date)::numeric / (:window + 1)), 4) AS score
        FROM reconciliation_lines l
        JOIN postings p ON p.account_id = :account AND p.amount = l.ledger_amount
        JOIN journal_entries e ON e.id = p.entry_id
        LEFT JOIN payments pay ON pay.id = e.payment_id
        WHERE l.reconciliation_id = :rec AND l.status = 'open'
          AND e.effective_date BETWEEN l.value_date - :window AND l.value_date + :window
          AND NOT EXISTS (SELECT 1 FROM reconciliation_matches m WHERE m.posting_id = p.id)
    ) scored
    WHERE score >= :min_score
"""

PAIR = """
    WITH candidates AS ({candidates}),
    ranked AS (
        SELECT line_id, posting_id, score,
               row_number() OVER (PARTITION BY line_id ORDER BY score DESC, days, posting_id) AS for_line,
               row_number() OVER (PARTITION BY posting_id ORDER BY score DESC, days, line_id) AS for_posting
        FROM candidates
    ),
    inserted AS (
        INSERT INTO reconciliation_matches (reconciliation_id, line_id, posting_id, kind, score)
        SELECT :rec, line_id, posting_id, :kind, score FROM ranked WHERE for_line = 1 AND for_posting = 1
        ON CONFLICT (posting_id) DO NOTHING
        RETURNING line_id
    ),
    matched AS (
        UPDATE reconciliation_lines SET status = 'matched', resolved_at = now()
        WHERE id IN (SELECT line_id FROM inserted) RETURNING 1
    )
    SELECT count(*) FROM matched
"""


def refuse(code: str, message: str) -> ApplicationError:
    """A refusal the API answers as a 4xx; retrying would not change it."""
    return ApplicationError(message, type=code, non_retryable=True)


class ReconciliationActivities:
    def __init__(self, db: Database, settings: Settings):
        self.db, self.settings = db, settings

    @activity.defn
    async def load_statement_lines(self, req: ReconciliationInput) -> int:
        """The statement's lines, from the file stored at import (parsed again: the same pure parser), once each."""
        async with self.db.session() as session, session.begin():
            rec = (
                await session.execute(
                    text(
                        """SELECT r.content, r.format, a.normal_balance FROM reconciliations r
                           JOIN ledger_accounts a ON a.id = r.account_id WHERE r.id = :id"""
                    ),
                    {"id": req.reconciliation_id},
                )
            ).one()
            # The import parsed and bounded it already: no bound here, so a lower RECONCILIATION_MAX_LINES since
            # cannot turn a stored statement into a step that fails for ever.
            statement = parse(rec.content, StatementFormat(rec.format), max_lines=sys.maxsize)
            sign = 1 if rec.normal_balance == "debit" else -1
            await session.execute(
                text(
                    """INSERT INTO reconciliation_lines (reconciliation_id, line_no, value_date, amount, ledger_amount,
                           description, reference, counterparty, status)
                       VALUES (:rec, :line_no, :value_date, :amount, :ledger_amount, :description, :reference,
                               :counterparty, 'open')
                       ON CONFLICT (reconciliation_id, line_no) DO NOTHING"""
                ),
                [
                    {
                        "rec": req.reconciliation_id,
                        **line.model_dump(),
                        "ledger_amount": sign * line.amount,
                    }
                    for line in statement.lines
                ],
            )
        return len(statement.lines)

    @activity.defn
    async def auto_match(self, req: AutoMatchInput) -> None:
        """The two passes, once per reconciliation: a reconciliation past `matching` (a retry after the commit, a
        continued run) is left as the operator has it, so an unmatched line is not matched again behind their back."""
        async with self.db.session() as session, session.begin():
            rec = (
                await session.execute(
                    text("SELECT account_id, status FROM reconciliations WHERE id = :id FOR UPDATE"),
                    {"id": req.reconciliation_id},
                )
            ).one()
            if rec.status != ReconciliationStatus.matching:
                return
            params = {
                "rec": req.reconciliation_id,
                "account": rec.account_id,
                "window": req.window_days,
                "min_score": req.min_score,
            }
            for kind, candidates in ((MatchKind.trace, TRACE_CANDIDATES), (MatchKind.score, SCORE_CANDIDATES)):
                for _ in range(MAX_ROUNDS):
                    paired = (
                        await session.execute(text(PAIR.format(candidates=candidates)), {**params, "kind": kind})
                    ).scalar_one()
                    if not paired:
                        break
            await session.execute(
                text("UPDATE reconciliations SET status = 'open' WHERE id = :id"), {"id": req.reconciliation_id}
            )

    @activity.defn
    async def reconciliation_snapshot(self, req: ReconciliationInput) -> ReconciliationSnapshot:
        """Where every line stands: the workflow validates the operator's actions against it."""
        async with self.db.session() as session:
            status = (
                await session.execute(
                    text("SELECT status FROM reconciliations WHERE id = :id"), {"id": req.reconciliation_id}
                )
            ).scalar_one()
            lines = (
                await session.execute(
                    text(
                        """SELECT line_no, ledger_amount, status FROM reconciliation_lines
                           WHERE reconciliation_id = :id ORDER BY line_no"""
                    ),
                    {"id": req.reconciliation_id},
                )
            ).all()
            kinds = dict(
                (
                    await session.execute(
                        text(
                            """SELECT kind, count(DISTINCT line_id) FROM reconciliation_matches
                               WHERE reconciliation_id = :id GROUP BY kind"""
                        ),
                        {"id": req.reconciliation_id},
                    )
                ).all()
            )
        return ReconciliationSnapshot(
            status=ReconciliationStatus(status),
            lines=[LineState(line_no=r.line_no, ledger_amount=r.ledger_amount, status=r.status) for r in lines],
            matched_by_trace=kinds.get(MatchKind.trace, 0),
            matched_by_score=kinds.get(MatchKind.score, 0),
        )

    @activity.defn
    async def apply_reconciliation_action(self, req: ActionInput) -> LineState:
        """One operator action, checked again under the reconciliation's and the line's locks (the API checked it
        first; another action or a match elsewhere may have come between). A retry of an action already written
        finds the line as it left it and answers the same."""
        act = req.action
        async with self.db.session() as session, session.begin():
            rec = (
                await session.execute(
                    text("SELECT id, account_id, status FROM reconciliations WHERE id = :id FOR UPDATE"),
                    {"id": req.reconciliation_id},
                )
            ).one()
            if rec.status == ReconciliationStatus.closed:
                raise refuse("reconciliation_closed", "the reconciliation is closed")
            line = (
                await session.execute(
                    text(
                        """SELECT id, line_no, ledger_amount, status, reason_code, note FROM reconciliation_lines
                           WHERE reconciliation_id = :rec AND line_no = :no FOR UPDATE"""
                    ),
                    {"rec": rec.id, "no": act.line_no},
                )
            ).one_or_none()
            if line is None:
                raise refuse("unknown_line", f"the statement has no line {act.line_no}")
            matched = [
                r.posting_id
                for r in (
                    await session.execute(
                        text("SELECT posting_id FROM reconciliation_matches WHERE line_id = :line ORDER BY posting_id"),
                        {"line": line.id},
                    )
                ).all()
            ]
            now = datetime.now(UTC)
            after: dict[str, Any]
            before = {"status": line.status, "postings": matched, "reason_code": line.reason_code, "note": line.note}
            if act.action in ("match", "split"):
                postings = await self._postings(session, rec.account_id, act.entry_ids)
                wanted = sorted(p.id for p in postings)
                if line.status == LineStatus.matched and matched == wanted:
                    return self._state(line, LineStatus.matched)  # a retry of this very match
                if line.status != LineStatus.open:
                    raise refuse("line_not_open", f"line {act.line_no} is {line.status}: unmatch it first")
                total = sum((p.amount for p in postings), Decimal("0"))
                if total != line.ledger_amount:
                    raise refuse(
                        "amount_mismatch",
                        f"the postings sum to {total}, line {act.line_no} is {line.ledger_amount} on the account",
                    )
                inserted = (
                    await session.execute(
                        text(
                            """INSERT INTO reconciliation_matches (reconciliation_id, line_id, posting_id, kind)
                               SELECT :rec, :line, unnest(CAST(:postings AS bigint[])), :kind
                               ON CONFLICT (posting_id) DO NOTHING RETURNING posting_id"""
                        ),
                        {
                            "rec": rec.id,
                            "line": line.id,
                            "postings": wanted,
                            "kind": MatchKind.split_line if act.action == "split" else MatchKind.manual,
                        },
                    )
                ).all()
                if len(inserted) != len(wanted):
                    raise refuse("posting_already_matched", "a posting named is already matched to a statement line")
                status, after = LineStatus.matched, {"status": "matched", "postings": wanted}
                await self._resolve(session, line.id, status, act.actor_id, now)
            elif act.action == "explain":
                reason = act.reason_code.value if act.reason_code else None
                if line.status == LineStatus.explained and (line.reason_code, line.note) == (reason, act.note):
                    return self._state(line, LineStatus.explained)
                if line.status != LineStatus.open:
                    raise refuse("line_not_open", f"line {act.line_no} is {line.status}: unmatch it first")
                status = LineStatus.explained
                after = {"status": "explained", "reason_code": reason, "note": act.note}
                await self._resolve(session, line.id, status, act.actor_id, now, reason, act.note)
            else:  # unmatch
                if line.status == LineStatus.open:
                    return self._state(line, LineStatus.open)  # nothing to undo (or a retry of this unmatch)
                await session.execute(text("DELETE FROM reconciliation_matches WHERE line_id = :id"), {"id": line.id})
                status, after = LineStatus.open, {"status": "open"}
                await self._resolve(session, line.id, status, None, None)
            await audit.record(
                session,
                actor=act.actor_email,
                actor_id=act.actor_id,
                action=f"reconciliation.{act.action}",
                entity_type="reconciliation",
                entity_id=rec.id,
                before={"line_no": act.line_no, **before},
                after={"line_no": act.line_no, **after},
            )
            return self._state(line, status)

    @activity.defn
    async def close_reconciliation(self, req: CloseRequest) -> None:
        """Closed once every line is matched or explained; a retry after the commit finds it closed."""
        async with self.db.session() as session, session.begin():
            status = (
                await session.execute(
                    text("SELECT status FROM reconciliations WHERE id = :id FOR UPDATE"),
                    {"id": req.reconciliation_id},
                )
            ).scalar_one()
            if status == ReconciliationStatus.closed:
                return
            still_open = (
                await session.execute(
                    text("SELECT count(*) FROM reconciliation_lines WHERE reconciliation_id = :id AND status = 'open'"),
                    {"id": req.reconciliation_id},
                )
            ).scalar_one()
            if still_open:
                raise refuse("lines_open", f"{still_open} lines are neither matched nor explained")
            await session.execute(
                text(
                    """UPDATE reconciliations SET status = 'closed', closed_by = :actor, closed_at = :now
                       WHERE id = :id"""
                ),
                {"actor": req.actor_id, "now": datetime.now(UTC), "id": req.reconciliation_id},
            )
            await audit.record(
                session,
                actor=req.actor_email,
                actor_id=req.actor_id,
                action="reconciliation.closed",
                entity_type="reconciliation",
                entity_id=req.reconciliation_id,
                before={"status": status},
                after={"status": "closed"},
            )

    async def _postings(self, session, account_id: uuid.UUID, entry_ids: list[uuid.UUID]) -> list:
        """The postings of these journal entries on the account; every entry must have one there."""
        rows = (
            await session.execute(
                text(
                    """SELECT id, entry_id, amount FROM postings
                       WHERE account_id = :account AND entry_id = ANY(CAST(:entries AS uuid[])) ORDER BY id"""
                ),
                {"account": account_id, "entries": [str(e) for e in entry_ids]},
            )
        ).all()
        missing = {str(e) for e in entry_ids} - {str(r.entry_id) for r in rows}
        if missing or not entry_ids:
            raise refuse("unknown_entry", f"no posting on the account of the entries {sorted(missing)}")
        return list(rows)

    async def _resolve(self, session, line_id: int, status: LineStatus, actor, now, reason=None, note=None) -> None:
        await session.execute(
            text(
                """UPDATE reconciliation_lines SET status = :status, resolved_by = :actor, resolved_at = :now,
                       reason_code = :reason, note = :note WHERE id = :id"""
            ),
            {"status": status, "actor": actor, "now": now, "reason": reason, "note": note, "id": line_id},
        )

    @staticmethod
    def _state(line, status: LineStatus) -> LineState:
        return LineState(line_no=line.line_no, ledger_amount=line.ledger_amount, status=status)

"""The read benchmark's database, written set-based (generate_series, one statement a table): organizations, their
staff and members, checking accounts each with a linked bank account, N payments (ACH debits and credits, book
transfers; statuses mixed as a year of traffic leaves them), N/10 loans, and the ledger all of that implies:
every journal entry a payment or loan would have posted (ACH submit, settle and return, book transfers, opening
deposits, loan disbursements and payoffs), two postings each, and the holds ACH payments place.

Written as a bulk load is: with the foreign-key and ledger triggers off (session_replication_role = replica; a
row-by-row foreign-key check takes a share lock on the referenced row, and a million of them on the same GL
account made the seed ten times slower), then checked set-based before anything reads it: every foreign key
resolves, every journal entry has at least two postings summing to zero, every posted account is open. Check
and unique constraints hold throughout. Ids are md5 hashes of a row's number, so statements join each other's rows
without reading them back. Every payment has two events (created, and its current status) rather than its whole
history."""

import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from core.db import libpq_url
from core.security import hash_password

PASSWORD = "reads-bench-password"
ORGS_MAX = 100
PAYMENTS_PER_ACCOUNT = 100
SUBMITTED = "('submitted','pending_settlement','settled','completed','returned','reversed')"
SETTLED = "('settled','completed','reversed')"
RETURNED = "('returned','reversed')"


@dataclass(frozen=True)
class Shape:
    payments: int
    orgs: int
    accounts: int  # checking accounts = members, a multiple of orgs
    loans: int

    @classmethod
    def for_payments(cls, payments: int) -> "Shape":
        """~100 payments an account, 100 organizations from 1,000,000 payments down (at least 2), a loan for
        every 10 payments."""
        orgs = min(ORGS_MAX, max(2, payments // 10_000))
        per_org = max(3, payments // PAYMENTS_PER_ACCOUNT // orgs)
        return cls(payments=payments, orgs=orgs, accounts=orgs * per_org, loans=max(1, payments // 10))


def org(number: str) -> str:
    """The organization of account/member `number` (SQL)."""
    return f"md5('org:' || (mod({number} - 1, %(orgs)s) + 1))::uuid"


ORGANIZATIONS = [
    "INSERT INTO organizations (id, name) "
    "SELECT md5('org:' || o)::uuid, 'Reads bench org ' || o FROM generate_series(1, %(orgs)s) AS o",
    "INSERT INTO users (id, email, full_name, hashed_password, role, org_id) "
    "SELECT md5(r || ':' || o)::uuid, r || '-' || o || '@reads.bench.example', 'Bench ' || r || ' ' || o, "
    "       %(hash)s, r, md5('org:' || o)::uuid "
    "FROM generate_series(1, %(orgs)s) AS o, unnest(ARRAY['org_admin', 'operator']) AS r",
    "INSERT INTO users (id, email, full_name, hashed_password, role, org_id) "
    "SELECT md5('member:' || a)::uuid, 'member-' || a || '@reads.bench.example', 'Bench member ' || a, "
    f"       %(hash)s, 'member', {org('a')} "
    "FROM generate_series(1, %(accounts)s) AS a",
    "INSERT INTO ledger_accounts (id, name, kind, type, normal_balance, currency, org_id, owner_id, status, created_at) "
    "SELECT md5('acct:' || a)::uuid, 'Checking ' || a, 'internal', 'checking', 'credit', 'USD', "
    f"       {org('a')}, md5('member:' || a)::uuid, 'active', %(start)s + a * interval '1 second' "
    "FROM generate_series(1, %(accounts)s) AS a",
    "INSERT INTO external_accounts (id, org_id, owner_id, holder_name, institution_name, source, routing_number, "
    "       account_number_encrypted, account_last4, fingerprint, account_type, status, debits_blocked, created_by, "
    "       created_at) "
    f"SELECT md5('ext:' || a)::uuid, {org('a')}, md5('member:' || a)::uuid, 'Bench member ' || a, 'Bench Bank', "
    "       'manual', '011000015', 'not-a-ciphertext', lpad(mod(a, 10000)::text, 4, '0'), md5('fp:' || a), "
    "       'checking', 'verified', false, md5('org_admin:' || (mod(a - 1, %(orgs)s) + 1))::uuid, "
    "       %(start)s + a * interval '1 second' "
    "FROM generate_series(1, %(accounts)s) AS a",
    "INSERT INTO loan_products (id, name, annual_rate, min_term, max_term, min_amount, max_amount, amortization, "
    "       frequency, day_count, grace_days, late_fee, active) "
    "VALUES (%(product)s, 'Reads bench personal loan', 0.089, 6, 60, 500, 50000, 'declining_balance', 'monthly', "
    "        '30/360', 10, 25.00, true)",
]

# Staging tables of the ledger transaction: what each payment and loan is, computed once.
STAGING = [
    "CREATE TEMP TABLE seed_loans ON COMMIT DROP AS "
    "SELECT l, md5('loan:' || l)::uuid AS id, a, status, amount, created_at, "
    "       CASE WHEN status IN ('active', 'closed') THEN md5('loanacct:' || l)::uuid END AS loan_account_id "
    "FROM (SELECT l, a, "
    "             CASE WHEN s < 50 THEN 'active' WHEN s < 70 THEN 'closed' WHEN s < 80 THEN 'declined' "
    "                  WHEN s < 85 THEN 'rejected' WHEN s < 90 THEN 'pending_approval' WHEN s < 95 THEN 'withdrawn' "
    "                  WHEN s < 97 THEN 'on_hold' ELSE 'failed' END AS status, "
    "             (1000 + mod(abs(hashtext('loan amount:' || l)::bigint), 49000))::numeric(20, 2) AS amount, "
    "             %(now)s - (%(loans)s - l) * interval '5 minutes' AS created_at "
    "      FROM (SELECT l, mod(l - 1, %(accounts)s) + 1 AS a, "
    "                   mod(abs(hashtext('loan status:' || l)::bigint), 100) AS s "
    "            FROM generate_series(1, %(loans)s) AS l) AS numbered) AS loans",
    "CREATE TEMP TABLE seed_payments ON COMMIT DROP AS "
    "SELECT i, md5('payment:' || i)::uuid AS id, a, kind, "
    "       md5('acct:' || a)::uuid AS account, "
    "       md5('acct:' || (mod(a - 1 + %(orgs)s, %(accounts)s) + 1))::uuid AS other_account, "  # same org
    "       CASE WHEN kind = 'book' THEN CASE WHEN s < 97 THEN 'completed' ELSE 'failed' END "
    "            WHEN s < 85 THEN 'completed' WHEN s < 88 THEN 'returned' WHEN s < 90 THEN 'failed' "
    "            WHEN s < 92 THEN 'canceled' WHEN s < 94 THEN 'pending_settlement' WHEN s < 95 THEN 'settled' "
    "            WHEN s < 96 THEN 'submitted' WHEN s < 97 THEN 'queued' WHEN s < 98 THEN 'created' "
    "            WHEN s < 99 THEN 'reversed' ELSE 'funds_held' END AS status, "
    "       ((100 + mod(abs(hashtext('amount:' || i)::bigint), 500000)) / 100.0)::numeric(20, 2) AS amount, "
    "       %(now)s - (%(payments)s - i) * interval '30 seconds' AS created_at "
    "FROM (SELECT i, mod(i - 1, %(accounts)s) + 1 AS a, "
    "             (ARRAY['ach_debit', 'ach_debit', 'ach_credit', 'ach_credit', 'book'])"
    "                 [mod(abs(hashtext('kind:' || i)::bigint), 5) + 1] AS kind, "
    "             mod(abs(hashtext('status:' || i)::bigint), 100) AS s "
    "      FROM generate_series(1, %(payments)s) AS i) AS numbered",
    # One row per journal entry: the account its amount debits (+) and the one it credits (-).
    "CREATE TEMP TABLE seed_entries ON COMMIT DROP AS "
    "WITH gl AS (SELECT (SELECT id FROM ledger_accounts WHERE code = 'GL-CASH' AND currency = 'USD') AS cash, "
    "                   (SELECT id FROM ledger_accounts WHERE code = 'GL-ACH-CLEARING' AND currency = 'USD') AS clearing), "
    "entries AS ("
    "  SELECT 'reads:deposit:' || a AS key, 'cash_deposit' AS entry_type, NULL::uuid AS payment_id, "
    "         %(start)s + a * interval '1 second' AS created_at, gl.cash AS debit, md5('acct:' || a)::uuid AS credit, "
    "         100000.00::numeric(20, 2) AS amount "
    "  FROM generate_series(1, %(accounts)s) AS a, gl "
    "  UNION ALL "
    "  SELECT 'payment:' || p.id || ':submit:1', 'ach_submit', p.id, p.created_at + interval '1 day', "
    "         CASE p.kind WHEN 'ach_credit' THEN p.account ELSE gl.clearing END, "
    "         CASE p.kind WHEN 'ach_credit' THEN gl.clearing ELSE p.account END, p.amount "
    f"  FROM seed_payments p, gl WHERE p.kind <> 'book' AND p.status IN {SUBMITTED} "
    "  UNION ALL "
    "  SELECT 'payment:' || p.id || ':settle:1', 'ach_settle', p.id, p.created_at + interval '2 days', "
    "         CASE p.kind WHEN 'ach_credit' THEN gl.clearing ELSE gl.cash END, "
    "         CASE p.kind WHEN 'ach_credit' THEN gl.cash ELSE gl.clearing END, p.amount "
    f"  FROM seed_payments p, gl WHERE p.kind <> 'book' AND p.status IN {SETTLED} "
    "  UNION ALL "  # a return undoes the member's side against clearing, or cash once settled
    "  SELECT 'payment:' || p.id || ':return:1', 'ach_return', p.id, p.created_at + interval '3 days', "
    "         CASE WHEN p.kind = 'ach_debit' THEN p.account WHEN p.status = 'returned' THEN gl.clearing "
    "              ELSE gl.cash END, "
    "         CASE WHEN p.kind = 'ach_credit' THEN p.account WHEN p.status = 'returned' THEN gl.clearing "
    "              ELSE gl.cash END, p.amount "
    f"  FROM seed_payments p, gl WHERE p.kind <> 'book' AND p.status IN {RETURNED} "
    "  UNION ALL "
    "  SELECT 'payment:' || p.id, 'book_transfer', p.id, p.created_at + interval '1 second', "
    "         p.account, p.other_account, p.amount "
    "  FROM seed_payments p WHERE p.kind = 'book' AND p.status = 'completed' "
    "  UNION ALL "
    "  SELECT 'loan:' || l.id || ':disburse', 'loan_disbursement', NULL, l.created_at + interval '2 days', "
    "         l.loan_account_id, md5('acct:' || l.a)::uuid, l.amount "
    "  FROM seed_loans l WHERE l.loan_account_id IS NOT NULL "
    "  UNION ALL "
    "  SELECT 'reads:loan:' || l.id || ':payoff', 'loan_payoff', NULL, "
    "         least(l.created_at + interval '30 days', %(now)s), md5('acct:' || l.a)::uuid, l.loan_account_id, l.amount "
    "  FROM seed_loans l WHERE l.status = 'closed') "
    "SELECT md5(key)::uuid AS entry_id, * FROM entries",
]

LEDGER = [
    "INSERT INTO ledger_accounts (id, name, kind, type, normal_balance, currency, org_id, owner_id, status, created_at) "
    "SELECT loan_account_id, 'Loan ' || l, 'internal', 'loan', 'debit', 'USD', "
    f"       {org('a')}, md5('member:' || a)::uuid, 'active', created_at + interval '2 days' "
    "FROM seed_loans WHERE loan_account_id IS NOT NULL ORDER BY created_at",
    "INSERT INTO journal_entries (id, idempotency_key, entry_type, description, effective_date, payment_id, created_at) "
    "SELECT entry_id, key, entry_type, replace(entry_type, '_', ' '), created_at::date, payment_id, created_at "
    "FROM seed_entries ORDER BY seed_entries.created_at",
    "INSERT INTO postings (entry_id, account_id, amount) "
    "SELECT e.entry_id, leg.account_id, leg.amount "
    "FROM seed_entries e, LATERAL (VALUES (e.debit, e.amount), (e.credit, -e.amount)) AS leg(account_id, amount) "
    "ORDER BY e.created_at, e.entry_id",
    "INSERT INTO payments (id, kind, status, amount, currency, from_account_id, to_account_id, memo, org_id, created_by, "
    "       idempotency_key, request_hash, workflow_id, journal_entry_id, external_account_id, sec_code, window_id, "
    "       trace_number, presentments, effective_date, settlement_date, return_code, failure_code, failure_reason, "
    "       created_at, updated_at) "
    "SELECT id, kind, status, amount, 'USD', "
    "       CASE kind WHEN 'ach_debit' THEN NULL ELSE account END, "
    "       CASE kind WHEN 'ach_debit' THEN account WHEN 'book' THEN other_account END, "
    f"       '', {org('a')}, md5('org_admin:' || (mod(a - 1, %(orgs)s) + 1))::uuid, "
    "       'reads-' || i, md5('request:' || i), 'payment-' || id, "
    "       CASE WHEN kind = 'book' AND status = 'completed' THEN md5('payment:' || id)::uuid "
    f"            WHEN kind <> 'book' AND status IN {SUBMITTED} THEN md5('payment:' || id || ':submit:1')::uuid END, "
    "       CASE WHEN kind <> 'book' THEN md5('ext:' || a)::uuid END, "
    "       CASE WHEN kind <> 'book' THEN 'PPD' END, "
    "       CASE WHEN kind <> 'book' AND status NOT IN ('created', 'funds_held', 'failed', 'canceled') "
    "            THEN 'window-' || to_char(created_at, 'YYYYMMDD\"T\"HH24') END, "
    f"       CASE WHEN kind <> 'book' AND status IN {SUBMITTED} THEN lpad(i::text, 15, '0') END, "
    f"       CASE WHEN kind <> 'book' AND status IN {SUBMITTED} THEN 1 ELSE 0 END, "
    "       CASE WHEN kind <> 'book' AND status NOT IN ('created', 'funds_held', 'failed', 'canceled') "
    "            THEN created_at::date + 1 END, "
    f"       CASE WHEN status IN {SETTLED} THEN created_at::date + 2 END, "
    "       CASE status WHEN 'returned' THEN 'R01' WHEN 'reversed' THEN 'R10' END, "
    "       CASE status WHEN 'failed' THEN 'insufficient_funds' END, "
    "       CASE status WHEN 'failed' THEN 'the available balance does not cover the amount' END, "
    "       created_at, created_at + interval '1 hour' "
    "FROM seed_payments ORDER BY created_at",
    "INSERT INTO payment_events (payment_id, event_key, status, at) "
    "SELECT id, 'created', 'created', created_at FROM seed_payments "
    "UNION ALL "
    "SELECT id, status || ':1', status, created_at + interval '1 hour' FROM seed_payments WHERE status <> 'created'",
    # A credit's funds are held from funds_held until submitted (captured); a debit's until its return window
    # passed (released).
    "INSERT INTO holds (id, account_id, amount, reason, idempotency_key, status, created_at, released_at) "
    "SELECT md5(key)::uuid, account, amount, reason, key, status, created_at, "
    "       CASE WHEN status <> 'active' THEN created_at + interval '1 day' END "
    "FROM (SELECT 'payment:' || id || ':hold' AS key, account, amount, 'ACH credit ' || id AS reason, created_at, "
    f"             CASE WHEN status IN {SUBMITTED} THEN 'captured' "
    "                  WHEN status IN ('funds_held', 'queued') THEN 'active' ELSE 'released' END AS status "
    "      FROM seed_payments WHERE kind = 'ach_credit' AND status <> 'created' "
    "      UNION ALL "
    "      SELECT 'payment:' || id || ':availability:1', account, amount, 'ACH debit ' || id, "
    "             created_at + interval '1 day', "
    "             CASE WHEN status IN ('pending_settlement', 'settled') THEN 'active' ELSE 'released' END "
    f"      FROM seed_payments WHERE kind = 'ach_debit' AND status IN {SUBMITTED}) AS h",
    "INSERT INTO loans (id, org_id, applicant_id, product_id, amount, term, purpose, member_type, monthly_income, "
    "       monthly_debt, annual_rate, amortization, frequency, day_count, grace_days, late_fee, deposit_account_id, "
    "       loan_account_id, external_account_id, auto_debit, days_past_due, aging_bucket, status, credit_score, "
    "       decline_reason, first_due_date, created_by, idempotency_key, request_hash, workflow_id, created_at, "
    "       updated_at, disbursed_at, closed_at) "
    f"SELECT id, {org('a')}, md5('member:' || a)::uuid, %(product)s, amount, 12 * (1 + mod(l, 5)), 'Bench loan', "
    "       'consumer', 6000.00, 500.00, 0.089, 'declining_balance', 'monthly', '30/360', 10, 25.00, "
    "       md5('acct:' || a)::uuid, loan_account_id, md5('ext:' || a)::uuid, mod(l, 2) = 0, dpd, "
    "       CASE WHEN dpd = 0 THEN NULL WHEN dpd <= 30 THEN '1-30' WHEN dpd <= 60 THEN '31-60' "
    "            WHEN dpd <= 90 THEN '61-90' ELSE '90+' END, "
    "       status, CASE WHEN status NOT IN ('failed', 'withdrawn') THEN 600 + mod(l, 200) END, "
    "       CASE WHEN status = 'declined' THEN 'debt to income above the limit' END, "
    "       CASE WHEN loan_account_id IS NOT NULL THEN created_at::date + 32 END, "
    "       md5('member:' || a)::uuid, 'reads-loan-' || l, md5('loan request:' || l), 'loan-' || id, created_at, "
    "       created_at + interval '1 hour', "
    "       CASE WHEN loan_account_id IS NOT NULL THEN created_at + interval '2 days' END, "
    "       CASE WHEN status = 'closed' THEN least(created_at + interval '30 days', %(now)s) END "
    "FROM (SELECT *, CASE WHEN status = 'active' AND mod(l, 10) = 0 THEN 1 + mod(l / 10, 120) ELSE 0 END AS dpd "
    "      FROM seed_loans) AS s ORDER BY created_at",
]

COUNTS = ["payments", "payment_events", "loans", "journal_entries", "postings", "holds", "ledger_accounts", "users"]


# Single-column foreign keys of the tables the seed writes: (table, column, referenced table, referenced column).
FOREIGN_KEYS = """
SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text, fa.attname
FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = c.confkey[1]
WHERE c.contype = 'f' AND c.conrelid::regclass::text = ANY(%s)
ORDER BY 1, 2
"""
WRITTEN = [
    "organizations",
    "users",
    "ledger_accounts",
    "external_accounts",
    "loan_products",
    "journal_entries",
    "postings",
    "payments",
    "payment_events",
    "holds",
    "loans",
]
PLAIN_INDEXES = (
    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = ANY(%s) "
    "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
)
LEDGER_RULES = {  # what the triggers of 0001 and 0012 would have refused, as counts that must be 0
    "unbalanced or one-legged entries": "SELECT count(*) FROM (SELECT entry_id FROM postings GROUP BY entry_id "
    "HAVING sum(amount) <> 0 OR count(*) < 2) AS bad",
    "entries without postings": "SELECT count(*) FROM journal_entries j "
    "WHERE NOT EXISTS (SELECT 1 FROM postings p WHERE p.entry_id = j.id)",
    "postings to closed accounts": "SELECT count(*) FROM postings p JOIN ledger_accounts a ON a.id = p.account_id "
    "WHERE a.status <> 'active'",
}


async def check(conn: psycopg.AsyncConnection) -> None:
    """What the triggers left off would have checked, set-based; raises on the first broken rule."""
    started = time.monotonic()
    multi = await (
        await conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND cardinality(conkey) > 1 "
            "AND conrelid::regclass::text = ANY(%s)",
            (WRITTEN,),
        )
    ).fetchone()
    assert multi == (0,), "a multi-column foreign key: check it here too"
    rules = dict(LEDGER_RULES)
    for table, column, parent, key in await (await conn.execute(FOREIGN_KEYS, (WRITTEN,))).fetchall():
        rules[f"{table}.{column} -> {parent}"] = (
            f"SELECT count(*) FROM {table} c WHERE c.{column} IS NOT NULL "
            f"AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.{key} = c.{column})"
        )
    for rule, sql in rules.items():
        broken = await (await conn.execute(sql)).fetchone()
        if broken != (0,):
            raise RuntimeError(f"the seeded data breaks a rule: {rule} ({broken} rows)")
    print(f"  … {len(rules)} rules checked … {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)


async def timed(conn: psycopg.AsyncConnection, statement: str, params: dict | None = None) -> None:
    """Runs `statement`, telling stderr how long it took (the seed is the slow part of a big run)."""
    started = time.monotonic()
    await conn.execute(statement, params)
    print(f"  … {' '.join(statement.split()[:4])} … {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)


async def seed(database_url: str, shape: Shape) -> tuple[float, dict[str, int]]:
    """Writes the data set; answers the seconds it took (VACUUM ANALYZE included) and each table's rows."""
    started = time.monotonic()
    now = datetime.now(UTC)
    params = {
        "payments": shape.payments,
        "orgs": shape.orgs,
        "accounts": shape.accounts,
        "loans": shape.loans,
        "hash": hash_password(PASSWORD),  # one hash for every user: argon2 is slow on purpose
        "product": uuid.uuid4(),
        "now": now,
        "start": now - timedelta(days=400),
    }
    async with await psycopg.AsyncConnection.connect(libpq_url(database_url), autocommit=True) as conn:
        await conn.execute("SET session_replication_role = replica")
        await conn.execute("SET work_mem = '256MB'")
        await conn.execute("SET maintenance_work_mem = '512MB'")
        for statement in ORGANIZATIONS:
            await timed(conn, statement, params)
        async with conn.transaction():
            # Indexes built once over the loaded rows, by a sort, rather than grown row by row (those backing a
            # constraint stay).
            indexes = await (await conn.execute(PLAIN_INDEXES, (WRITTEN,))).fetchall()
            for name, _ in indexes:
                await conn.execute(f'DROP INDEX "{name}"')
            for statement in STAGING + LEDGER:
                await timed(conn, statement, params)
            for _, definition in indexes:
                await timed(conn, definition)
            committing = time.monotonic()
        print(f"  … commit (deferred checks) … {time.monotonic() - committing:.1f} s", file=sys.stderr, flush=True)
        # As autovacuum leaves a table that has been around: statistics, and the visibility map that lets counts
        # and index-only scans skip the heap.
        await timed(conn, "VACUUM ANALYZE")
        await check(conn)
        counts = {}
        for table in COUNTS:
            row = await (await conn.execute(f"SELECT count(*) FROM {table}")).fetchone()
            counts[table] = row[0] if row else 0
    return time.monotonic() - started, counts

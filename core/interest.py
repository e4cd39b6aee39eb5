"""The set-based SQL of interest: one statement accrues a day for a batch of accounts, one statement posts a
month for a batch of accounts (or, for the benchmark's baseline, for all of them at once).

Both agree with finance/interest.py, the reference in Python (tests compare them):

* A day's interest is `annual interest on the end-of-day ledger balance x the day's fraction of a year`
  (finance.daycount.day_fraction; 30/360 weighs each day by the change of its 360*Y + 30*M + D number),
  rounded half up to 10 decimals. Tiers price each slice of the balance at its band's rate. Deposit interest
  accrues on positive balances only: an overdrawn or empty day accrues 0 (with a flat rate finance.interest
  would charge a negative balance; a savings product never does).
* A closed account accrues and posts nothing: nothing posts into a closed account, and closing waits until the
  account is owed no interest (core/closing.py, with UNPOSTED_INTEREST and FIRST_UNACCRUED_DAY below).
* Rounding policy: per account and period, the unrounded daily accruals (10 decimals) are summed and the sum
  is rounded half up to the cent once, at posting. Postgres' round(numeric) rounds half away from zero, as
  finance.money's ROUND_HALF_UP does. Zero amounts post nothing.

The day's fraction is computed as num/den with 20 decimals before rounding to 10: balance x rate has 8
decimals and den is 360, 365 or 366, so the exact value is never within 1e-13 of a rounding boundary it
isn't on, and 20 decimals decide every case exactly.
"""

from sqlalchemy import text

# Both batch statements run planned afresh (core/db.execute_planned_afresh): their cursor must be an index range.
# :day, :after (uuid or NULL), :size. Returns the batch's last account id, its size, and the count and sum of
# its accruals for the day, written now or by an earlier attempt (so a retry reports the same totals).
ACCRUE_BATCH = text("""
WITH batch AS (
    SELECT s.account_id, s.product_id, a.normal_balance
    FROM savings_accounts s JOIN ledger_accounts a ON a.id = s.account_id
    WHERE s.product_id IS NOT NULL AND a.status = 'active'  -- a closed account earns nothing
      AND (CAST(:after AS uuid) IS NULL OR s.account_id > CAST(:after AS uuid))
    ORDER BY s.account_id
    LIMIT :size
),
fraction AS (  -- each product's fraction of a year for :day, as num / den
    SELECT p.id AS product_id,
           CASE p.day_count WHEN '30/360' THEN
                 (360 * extract(year FROM d.next) + 30 * extract(month FROM d.next) + extract(day FROM d.next))
               - (360 * extract(year FROM d.day) + 30 * extract(month FROM d.day) + extract(day FROM d.day))
           ELSE 1 END AS num,
           CASE p.day_count WHEN 'actual/365' THEN 365
                            WHEN 'actual/actual' THEN make_date(extract(year FROM d.day)::int + 1, 1, 1)
                                                      - make_date(extract(year FROM d.day)::int, 1, 1)
           ELSE 360 END AS den
    FROM savings_products p, (SELECT CAST(:day AS date) AS day, CAST(:day AS date) + 1 AS next) d
),
band AS (  -- a flat rate is one open band
    SELECT p.id AS product_id, (t.band->>'rate')::numeric AS rate, (t.band->>'up_to')::numeric AS upper,
           COALESCE(lag((t.band->>'up_to')::numeric) OVER (PARTITION BY p.id ORDER BY t.ord), 0) AS lower
    FROM savings_products p,
         jsonb_array_elements(COALESCE(NULLIF(p.tiers, 'null'), jsonb_build_array(jsonb_build_object('up_to', NULL,
                                                                                     'rate', p.annual_rate))))
             WITH ORDINALITY AS t(band, ord)
),
balance AS (  -- end of day: every posting whose entry is effective on or before :day
    SELECT b.account_id, b.product_id,
           COALESCE((SELECT sum(po.amount) FROM postings po JOIN journal_entries j ON j.id = po.entry_id
                     WHERE po.account_id = b.account_id AND j.effective_date <= CAST(:day AS date)), 0)
           * CASE b.normal_balance WHEN 'debit' THEN 1 ELSE -1 END AS balance
    FROM batch b
),
yearly AS (
    SELECT bal.account_id, bal.product_id, bal.balance,
           sum(band.rate * GREATEST(LEAST(bal.balance, COALESCE(band.upper, bal.balance)) - band.lower, 0)) AS interest
    FROM balance bal JOIN band ON band.product_id = bal.product_id
    GROUP BY bal.account_id, bal.product_id, bal.balance
),
earlier AS (
    SELECT a.amount FROM interest_accruals a JOIN batch b ON b.account_id = a.account_id
    WHERE a.day = CAST(:day AS date)
),
written AS (
    INSERT INTO interest_accruals (account_id, day, product_id, balance, amount)
    SELECT y.account_id, CAST(:day AS date), y.product_id, y.balance,
           round(CAST(y.interest AS numeric(38, 20)) * f.num / f.den, 10)
    FROM yearly y JOIN fraction f ON f.product_id = y.product_id
    ORDER BY y.account_id
    ON CONFLICT (account_id, day) DO NOTHING
    RETURNING amount
)
SELECT (SELECT account_id FROM batch ORDER BY account_id DESC LIMIT 1) AS last_account_id,
       (SELECT count(*) FROM batch) AS accounts,
       (SELECT count(*) FROM earlier) + (SELECT count(*) FROM written) AS accrued_accounts,
       COALESCE((SELECT sum(amount) FROM earlier), 0) + COALESCE((SELECT sum(amount) FROM written), 0) AS accrued
""")

# :day, :accounts, :accrued: the day's accrual ran to the end (a rerun of the day refreshes its totals).
RECORD_ACCRUAL_RUN = text("""
INSERT INTO accrual_runs (day, accounts, accrued) VALUES (:day, :accounts, :accrued)
ON CONFLICT (day) DO UPDATE SET accounts = EXCLUDED.accounts, accrued = EXCLUDED.accrued, completed_at = now()
""")

# :first, :last: the days of a period whose accrual has not run to the end.
UNACCRUED_DAYS = text("""
SELECT d::date AS day FROM generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') AS d
WHERE NOT EXISTS (SELECT 1 FROM accrual_runs r WHERE r.day = d::date)
ORDER BY 1
""")

# Serializes the attempts on one period: an attempt that timed out but still runs finishes (or aborts) before
# a retry reads, so the retry's statement sees everything committed and reports the true batch totals.
LOCK_PERIOD = text("SELECT pg_advisory_xact_lock(hashtext('interest-posting:' || :period))")


# For every account at once (the benchmark's baseline): joins of whole tables, which hash joins do best.
SET_BASED = """
accrued AS (
    SELECT a.account_id, sum(a.amount) AS accrued
    FROM interest_accruals a JOIN batch b ON b.account_id = a.account_id
    JOIN ledger_accounts la ON la.id = a.account_id AND la.status = 'active'  -- nothing posts into a closed one
    WHERE a.day BETWEEN CAST(:first AS date) AND CAST(:last AS date)
    GROUP BY a.account_id
),
earlier AS (
    SELECT ip.amount FROM interest_postings ip JOIN batch b ON b.account_id = ip.account_id
    WHERE ip.period = :period
),"""

# For a batch: each account's rows looked up by index, so a batch costs the same whatever the size of the tables.
# Joins would let the planner read ledger_accounts or interest_postings whole for every batch (a merge join
# from the first account id, a hash join on a sequential scan): quadratic in the accounts. Subqueries with an
# aggregate or in the select list are never flattened into joins.
PER_ACCOUNT = """
accrued AS (
    SELECT b.account_id, t.accrued
    FROM batch b CROSS JOIN LATERAL (
        SELECT sum(a.amount) AS accrued FROM interest_accruals a
        WHERE a.account_id = b.account_id AND a.day BETWEEN CAST(:first AS date) AND CAST(:last AS date)
    ) t
    WHERE (SELECT la.status FROM ledger_accounts la WHERE la.id = b.account_id) = 'active'  -- none into a closed one
),
earlier AS (
    SELECT (SELECT ip.amount FROM interest_postings ip WHERE ip.period = :period AND ip.account_id = b.account_id)
           AS amount
    FROM batch b
),"""


def _posting_sql(batch: str, lookups: str) -> str:
    """Posts every account of `batch` (a query of account_id) for :period: the interest_postings row, its journal
    entry and both legs, in one statement (the ledger checks balance per statement). :first/:last bound the
    period, :gl is GL-INTEREST-EXPENSE. An account posted already (unique (account_id, period)) is skipped.
    `lookups` (SET_BASED or PER_ACCOUNT) defines `accrued` (account_id, accrued: NULL or none when nothing accrued)
    and `earlier` (amount: NULL or none when not posted yet)."""
    return f"""
WITH batch AS ({batch}),{lookups}
posted AS (
    INSERT INTO interest_postings (account_id, period, accrued, amount, journal_entry_id)
    SELECT account_id, :period, accrued, round(accrued, 2), gen_random_uuid()
    FROM accrued WHERE round(accrued, 2) > 0
    ORDER BY account_id
    ON CONFLICT (account_id, period) DO NOTHING
    RETURNING account_id, amount, journal_entry_id
),
entries AS (
    INSERT INTO journal_entries (id, idempotency_key, entry_type, description, effective_date)
    SELECT journal_entry_id, 'interest:' || :period || ':' || account_id, 'interest_posting',
           'Interest for ' || :period, CAST(:last AS date)
    FROM posted
    RETURNING id
),
legs AS (  -- interest expense debited (+), the member's account credited (-)
    INSERT INTO postings (entry_id, account_id, amount)
    SELECT p.journal_entry_id, leg.account_id, leg.amount
    FROM posted p CROSS JOIN LATERAL (VALUES (CAST(:gl AS uuid), p.amount), (p.account_id, -p.amount))
        AS leg(account_id, amount)
    RETURNING entry_id
)
SELECT (SELECT account_id FROM batch ORDER BY account_id DESC LIMIT 1) AS last_account_id,
       (SELECT count(*) FROM batch) AS accounts,
       (SELECT count(*) FROM posted) AS new_postings,
       (SELECT count(amount) FROM earlier) + (SELECT count(*) FROM posted) AS posted,
       COALESCE((SELECT sum(amount) FROM earlier), 0) + COALESCE((SELECT sum(amount) FROM posted), 0) AS amount,
       (SELECT count(*) FROM entries) + (SELECT count(*) FROM legs) AS ledger_rows
"""


# :period, :first, :last, :gl, :after (uuid or NULL), :size: the next batch of accounts by id.
POST_BATCH = text(
    _posting_sql(
        """
    SELECT s.account_id FROM savings_accounts s
    WHERE CAST(:after AS uuid) IS NULL OR s.account_id > CAST(:after AS uuid)
    ORDER BY s.account_id LIMIT :size""",
        PER_ACCOUNT,
    )
)

# The same writes for every account at once: the benchmark's hand-written baseline.
POST_ALL = text(_posting_sql("SELECT s.account_id FROM savings_accounts s", SET_BASED))

COUNT_ACCOUNTS = text("SELECT count(*) FROM savings_accounts")

SUMMARY = text(
    "SELECT count(*) AS accounts, COALESCE(sum(amount), 0) AS total FROM interest_postings WHERE period = :period"
)

# Each organization's share of a period's postings, for the organizations that have active operators to tell and
# accounts posted (accounts without an organization count only bank-wide).
ORG_SUMMARIES = text("""
WITH per_org AS (
    SELECT a.org_id, count(*) AS accounts, sum(p.amount) AS total
    FROM interest_postings p JOIN ledger_accounts a ON a.id = p.account_id
    WHERE p.period = :period AND a.org_id IS NOT NULL
    GROUP BY a.org_id
)
SELECT o.id AS org_id, o.name, po.accounts, po.total
FROM per_org po JOIN organizations o ON o.id = po.org_id
WHERE EXISTS (SELECT 1 FROM users u WHERE u.org_id = o.id AND u.is_active AND u.role = 'operator')
ORDER BY o.id
""")


# What an account is still owed before it may close (core/closing.py), :account.
# Accruals of months not posted to it that would post (round to a cent or more): period, accrued.
UNPOSTED_INTEREST = text("""
SELECT to_char(a.day, 'YYYY-MM') AS period, sum(a.amount) AS accrued
FROM interest_accruals a
WHERE a.account_id = :account
  AND NOT EXISTS (SELECT 1 FROM interest_postings p WHERE p.account_id = a.account_id
                                                      AND p.period = to_char(a.day, 'YYYY-MM'))
GROUP BY 1 HAVING round(sum(a.amount), 2) > 0
ORDER BY 1
""")

# The first day the account held money that has not been accrued yet: a day after its last accrual and before its
# last balance change (from then on its balance is today's). NULL when there is none or it earns on no product.
FIRST_UNACCRUED_DAY = text("""
WITH changes AS (  -- the end-of-day balance of each day it changed
    SELECT d.day, sum(d.amount) OVER (ORDER BY d.day) * CASE a.normal_balance WHEN 'debit' THEN 1 ELSE -1 END
               AS balance
    FROM (SELECT j.effective_date AS day, sum(p.amount) AS amount FROM postings p
          JOIN journal_entries j ON j.id = p.entry_id WHERE p.account_id = :account GROUP BY 1) d
    JOIN ledger_accounts a ON a.id = :account
),
bounds AS (
    SELECT (SELECT max(day) FROM interest_accruals WHERE account_id = :account) AS accrued_to,
           (SELECT max(day) FROM changes) AS last_change
    FROM savings_accounts s WHERE s.account_id = :account AND s.product_id IS NOT NULL
)
SELECT min(day) FROM (
    SELECT b.accrued_to + 1 AS day FROM bounds b  -- the balance carried past its last accrual
    WHERE b.accrued_to + 1 < b.last_change AND NOT EXISTS (SELECT 1 FROM changes WHERE day = b.accrued_to + 1)
      AND (SELECT balance FROM changes WHERE day <= b.accrued_to ORDER BY day DESC LIMIT 1) > 0
    UNION ALL
    SELECT c.day FROM changes c, bounds b
    WHERE (b.accrued_to IS NULL OR c.day > b.accrued_to) AND c.day < b.last_change AND c.balance > 0
) owed
""")

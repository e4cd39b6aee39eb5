"""A member's insights (README: Insights): cash flow, top merchants, categories, burn rate, net worth.

Each is ONE set-based query on the `member_transactions` view, grouped in Postgres by month/merchant/category AND
currency, under the one access policy (access.money_rows with ShareWhat.transactions: a grantee sees what the
member's share lets them, staff their organization's members, read only). The few grouped rows are then converted
to the reporting currency (the member's base currency unless asked otherwise) at the cached latest rates
(domain/fx.py): each currency's sum at full precision, added up, the total rounded once (ROUND_HALF_EVEN).

Sign: money in is positive. Income, expenses and merchants leave out the categories of kind 'transfer' (moving money between
one's own accounts is neither); net worth counts every line (a transfer between two of one's accounts nets to 0).
Net worth is each month-end's running sum of every line of the member's accounts (ledger accounts: their balance;
external accounts: the total of their imported lines), converted at the LATEST rates (the provider's history is not
cached; the rate date is in `rates`), so its curve shows the member's money, not the exchange rates' moves.
"""

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Date, DateTime, Select, Subquery, cast, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core import access
from core.access import Entity
from domain.fx import Converter, RateTable, round_money
from models.external_accounts import ExternalAccount
from models.ledger import LedgerAccount
from models.money import MEMBER_TRANSACTIONS, Category, CategoryKind, MoneyShare, ShareWhat
from models.users import Role, User

T = MEMBER_TRANSACTIONS.c


def bytewise(column: Any, name: str) -> Any:
    """A text key grouped by its bytes (COLLATE "C"): the same groups, without the locale's string comparisons, which
    took most of the time of grouping 30,000 lines by merchant (bench/README.md, "Insights")."""
    return column.collate("C").label(name)


def monthly(daily: Subquery, *sums: str) -> Select:
    """Days folded into months. The rows are first grouped by day (`daily`: posted_on AS day, currency, sums), which
    streams in the index's (user_id, posted_on) order with no sort and no per-row function; only the few hundred
    days are truncated to their month (as a timestamp without zone: a date's implicit timestamptz would convert
    through the session's time zone for every row). About half the time of grouping the rows by month directly."""
    month = cast(func.date_trunc("month", cast(daily.c.day, DateTime)), Date).label("month")
    return select(month, daily.c.currency, *(func.sum(daily.c[name]).label(name) for name in sums)).group_by(
        literal_column("1"), daily.c.currency
    )


async def visible_member(session: AsyncSession, user: User, member_id: uuid.UUID | None) -> User:
    """The member whose money is asked for: the caller by default; another one only for a superuser, their
    organization's admin or operator, or a member they shared their transactions with; 404 otherwise (as if none)."""
    if member_id is None or member_id == user.id:
        return user
    member = await session.get(User, member_id)
    if member is not None and member.role == Role.member:
        if user.role == Role.superuser:
            return member
        if user.role in (Role.org_admin, Role.operator) and user.org_id == member.org_id:
            return member
        if user.role == Role.member:
            shared = await session.scalar(
                select(col(MoneyShare.id)).where(
                    col(MoneyShare.owner_id) == member_id,
                    col(MoneyShare.grantee_id) == user.id,
                    col(MoneyShare.what) == ShareWhat.transactions,
                    col(MoneyShare.revoked_at).is_(None),
                )
            )
            if shared is not None:
                return member
    raise access.not_visible(user, Entity.member, member_id, exists=member is not None)


def visible_rows(user: User, member: User) -> list[ColumnElement[bool]]:
    return [
        T.user_id == member.id,
        access.money_rows(user, ShareWhat.transactions, T.user_id, T.org_id, T.amount, T.category_key),
    ]


def not_transfer(member: User) -> ColumnElement[bool]:
    transfer_keys = select(col(Category.key)).where(
        col(Category.kind) == CategoryKind.transfer,
        or_(col(Category.user_id).is_(None), col(Category.user_id) == member.id),
    )
    return T.category_key.not_in(transfer_keys)


def period(start: date, end: date) -> list[ColumnElement[bool]]:
    return [T.posted_on >= start, T.posted_on <= end]


def months_between(start: date, end: date) -> list[date]:
    month, out = start.replace(day=1), []
    while month <= end:
        out.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return out


def month_start_back(today: date, months: int) -> date:
    """The first day of the month `months` months before today's."""
    index = today.year * 12 + today.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


@dataclass
class Totals:
    """Sums per currency, converted once they are all known."""

    by_currency: dict[str, Decimal]

    def __init__(self) -> None:
        self.by_currency = defaultdict(Decimal)

    def add(self, currency: str, amount: Decimal | None) -> None:
        if amount:
            self.by_currency[currency] += amount

    def converted(self, table: RateTable, target: str) -> Decimal:
        exact = sum((amount * table.rate(code, target) for code, amount in self.by_currency.items()), Decimal(0))
        return round_money(exact, target)


def rates_used(table: RateTable, currencies: set[str], target: str) -> list[dict[str, Any]]:
    return [
        {"currency": code, "to": target, "rate": table.rate(code, target), "as_of": table.as_of, "source": table.source}
        for code in sorted(currencies - {target})
    ]


async def _rows(session: AsyncSession, statement) -> list[Any]:
    return list((await session.execute(statement)).all())


async def cash_flow(
    session: AsyncSession, converter: Converter, user: User, member: User, target: str, start: date, end: date
) -> dict[str, Any]:
    income = func.sum(T.amount).filter(T.amount > 0)
    expenses = -func.sum(T.amount).filter(T.amount < 0)
    daily = (
        select(
            T.posted_on.label("day"),
            T.currency,
            income.label("income"),
            expenses.label("expenses"),
            func.count().label("n"),
        )
        .where(*visible_rows(user, member), *period(start, end), not_transfer(member))
        .group_by(T.posted_on, T.currency)
        .subquery()
    )
    rows = await _rows(session, monthly(daily, "income", "expenses", "n"))
    currencies = {row.currency for row in rows}
    table = await converter.rates_for(currencies, target)
    by_month: dict[date, tuple[Totals, Totals, list[int]]] = {
        m: (Totals(), Totals(), [0]) for m in months_between(start, end)
    }
    all_in, all_out = Totals(), Totals()
    for row in rows:
        money_in, money_out, count = by_month[row.month]
        money_in.add(row.currency, row.income)
        money_out.add(row.currency, row.expenses)
        all_in.add(row.currency, row.income)
        all_out.add(row.currency, row.expenses)
        count[0] += row.n
    months = []
    for month, (money_in, money_out, count) in by_month.items():
        inc, exp = money_in.converted(table, target), money_out.converted(table, target)
        months.append(
            {
                "month": month.strftime("%Y-%m"),
                "income": inc,
                "expenses": exp,
                "net": inc - exp,
                "transactions": count[0],
            }
        )
    income_total, expenses_total = all_in.converted(table, target), all_out.converted(table, target)
    return {
        "member_id": member.id,
        "currency": target,
        "from": start,
        "to": end,
        "months": months,
        "income": income_total,
        "expenses": expenses_total,
        "net": income_total - expenses_total,
        "rates": rates_used(table, currencies, target),
    }


async def top_merchants(
    session: AsyncSession,
    converter: Converter,
    user: User,
    member: User,
    target: str,
    start: date,
    end: date,
    limit: int,
) -> dict[str, Any]:
    rows = await _rows(
        session,
        select(
            bytewise(T.merchant, "merchant"), T.currency, (-func.sum(T.amount)).label("spent"), func.count().label("n")
        )
        .where(
            *visible_rows(user, member),
            *period(start, end),
            T.amount < 0,
            T.merchant.is_not(None),
            not_transfer(member),
        )
        .group_by(literal_column("1"), T.currency),
    )
    currencies = {row.currency for row in rows}
    table = await converter.rates_for(currencies, target)
    spent: dict[str, Totals] = defaultdict(Totals)
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        spent[row.merchant].add(row.currency, row.spent)
        counts[row.merchant] += row.n
    ranked = sorted(
        ((totals.converted(table, target), name) for name, totals in spent.items()), key=lambda m: (-m[0], m[1])
    )
    merchants = [{"merchant": name, "spent": amount, "transactions": counts[name]} for amount, name in ranked]
    return {
        "member_id": member.id,
        "currency": target,
        "from": start,
        "to": end,
        "merchants": merchants[:limit],
        "rates": rates_used(table, currencies, target),
    }


async def categories(
    session: AsyncSession, converter: Converter, user: User, member: User, target: str, start: date, end: date
) -> dict[str, Any]:
    rows = await _rows(
        session,
        select(
            bytewise(T.category_key, "category_key"),
            T.currency,
            func.sum(T.amount).filter(T.amount > 0).label("income"),
            (-func.sum(T.amount).filter(T.amount < 0)).label("expenses"),
            func.count().label("n"),
        )
        .where(*visible_rows(user, member), *period(start, end))
        .group_by(literal_column("1"), T.currency),
    )
    keys = sorted({row.category_key for row in rows})
    names: dict[str, tuple[str, str]] = {}
    if keys:
        known = await _rows(
            session,
            select(col(Category.key), col(Category.name), col(Category.kind), col(Category.user_id))
            .where(
                col(Category.key).in_(keys), or_(col(Category.user_id).is_(None), col(Category.user_id) == member.id)
            )
            .order_by(col(Category.user_id).is_(None)),  # the member's own first: it wins over a predefined one
        )
        for key, name, kind, _owner in reversed(known):
            names[key] = (name, kind)
    currencies = {row.currency for row in rows}
    table = await converter.rates_for(currencies, target)
    income: dict[str, Totals] = defaultdict(Totals)
    expenses: dict[str, Totals] = defaultdict(Totals)
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        income[row.category_key].add(row.currency, row.income)
        expenses[row.category_key].add(row.currency, row.expenses)
        counts[row.category_key] += row.n
    out = []
    for key in keys:
        name, kind = names.get(key, (key, "expense"))
        out.append(
            {
                "category": key,
                "name": name,
                "kind": kind,
                "income": income[key].converted(table, target),
                "expenses": expenses[key].converted(table, target),
                "transactions": counts[key],
            }
        )
    spent = sum((c["expenses"] for c in out if c["kind"] != CategoryKind.transfer), Decimal(0))
    for c in out:
        share = c["expenses"] * 100 / spent if spent and c["kind"] != CategoryKind.transfer else Decimal(0)
        c["share_of_expenses_pct"] = share.quantize(Decimal("0.01"))
    out.sort(key=lambda c: (-c["expenses"], -c["income"], c["category"]))
    return {
        "member_id": member.id,
        "currency": target,
        "from": start,
        "to": end,
        "expenses": spent,
        "categories": out,
        "rates": rates_used(table, currencies, target),
    }


async def burn_rate(
    session: AsyncSession, converter: Converter, user: User, member: User, target: str, today: date, months: int
) -> dict[str, Any]:
    """Average monthly expenses over the last `months` complete months, and their trend: the least-squares slope
    (per month) of the monthly figures; rising or falling when it moves more than 2% of the average a month."""
    end = today.replace(day=1) - timedelta(days=1)
    start = month_start_back(today, months)
    flow = await cash_flow(session, converter, user, member, target, start, end)
    series = [m["expenses"] for m in flow["months"]]
    n = len(series)
    average = round_money(sum(series, Decimal(0)) / n, target)
    mean_x = Decimal(n - 1) / 2
    variance = sum(((Decimal(i) - mean_x) ** 2 for i in range(n)), Decimal(0))
    exact_average = sum(series, Decimal(0)) / n
    slope = (
        sum(((Decimal(i) - mean_x) * (y - exact_average) for i, y in enumerate(series)), Decimal(0)) / variance
        if variance
        else Decimal(0)
    )
    threshold = exact_average * Decimal("0.02")
    direction = (
        "rising" if slope > threshold and slope > 0 else "falling" if slope < -threshold and slope < 0 else "flat"
    )
    return {
        "member_id": member.id,
        "currency": target,
        "from": start,
        "to": end,
        "months": [{"month": m["month"], "expenses": m["expenses"]} for m in flow["months"]],
        "average_monthly_expenses": average,
        "trend_per_month": round_money(slope, target),
        "trend": direction,
        "rates": flow["rates"],
    }


async def net_worth(
    session: AsyncSession, converter: Converter, user: User, member: User, target: str, start: date, end: date
) -> dict[str, Any]:
    daily = (
        select(T.posted_on.label("day"), T.currency, func.sum(T.amount).label("delta"))
        .where(*visible_rows(user, member), T.posted_on <= end)
        .group_by(T.posted_on, T.currency)
        .subquery()
    )
    rows = await _rows(session, monthly(daily, "delta").order_by(literal_column("1")))
    currencies = {row.currency for row in rows}
    table = await converter.rates_for(currencies, target)
    running, points, months = Totals(), [], months_between(start, end)
    pending = iter(rows)
    row = next(pending, None)
    for month in months:
        while row is not None and row.month <= month:
            running.add(row.currency, row.delta)
            row = next(pending, None)
        points.append(
            {
                "month": month.strftime("%Y-%m"),
                "net_worth": running.converted(table, target),
                "by_currency": {code: amount for code, amount in sorted(running.by_currency.items()) if amount},
            }
        )
    return {
        "member_id": member.id,
        "currency": target,
        "from": start,
        "to": end,
        "rates_as_of": "latest",
        "points": points,
        "rates": rates_used(table, currencies, target),
    }


async def money_summary(
    session: AsyncSession, converter: Converter, user: User, member: User, target: str
) -> dict[str, Any]:
    """Each of the member's accounts with money on it, in its own currency and in `target`: a ledger account's
    balance, an external account's imported-lines total."""
    rows = await _rows(
        session,
        select(
            T.account_id,
            T.external_account_id,
            T.currency,
            func.sum(T.amount).label("balance"),
            func.count().label("n"),
            func.max(T.posted_on).label("last_posted_on"),
        )
        .where(*visible_rows(user, member))
        .group_by(T.account_id, T.external_account_id, T.currency),
    )
    ledger_ids = [r.account_id for r in rows if r.account_id is not None]
    external_ids = [r.external_account_id for r in rows if r.external_account_id is not None]
    names: dict[Any, str] = {}
    if ledger_ids:
        for account_id, name in await _rows(
            session, select(col(LedgerAccount.id), col(LedgerAccount.name)).where(col(LedgerAccount.id).in_(ledger_ids))
        ):
            names[account_id] = name
    if external_ids:
        for account_id, institution, last4 in await _rows(
            session,
            select(
                col(ExternalAccount.id), col(ExternalAccount.institution_name), col(ExternalAccount.account_last4)
            ).where(col(ExternalAccount.id).in_(external_ids)),
        ):
            names[account_id] = f"{institution} ••{last4}"
    currencies = {row.currency for row in rows}
    table = await converter.rates_for(currencies, target)
    accounts, total = [], Totals()
    for row in sorted(
        rows, key=lambda r: (r.account_id is None, str(r.account_id or r.external_account_id), r.currency)
    ):
        kind = "ledger" if row.account_id is not None else "external"  # every imported line has its account (0048)
        conversion_rate = table.rate(row.currency, target)
        total.add(row.currency, row.balance)
        accounts.append(
            {
                "kind": kind,
                "account_id": row.account_id or row.external_account_id,
                "name": names.get(row.account_id or row.external_account_id, ""),
                "currency": row.currency,
                "balance": row.balance,
                "transactions": row.n,
                "last_posted_on": row.last_posted_on,
                "converted": {
                    "currency": target,
                    "amount": round_money(row.balance * conversion_rate, target),
                    "rate": conversion_rate.quantize(Decimal("1E-10")),
                    "as_of": table.as_of if row.currency != target else None,
                    "source": table.source if row.currency != target else "identity",
                },
            }
        )
    return {
        "member_id": member.id,
        "currency": target,
        "accounts": accounts,
        "total": total.converted(table, target),
        "rates": rates_used(table, currencies, target),
    }

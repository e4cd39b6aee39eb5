"""The loan portfolio by arrears bucket and product, with loan-loss provisions (pure: domain/report_sources.py reads
the groups by one set-based query).

A loan's bucket is the one the servicing workflow keeps on it (days past its oldest unpaid due date): `current`, then
1-30, 31-60, 61-90 and 90+ days. The provision of a group is its outstanding principal times the bucket's rate,
rounded to the cent (half up, finance/money.py); the totals are the sums of the groups. Default rates (Settings
PROVISIONING_RATES overrides them, bank-wide): current 1 %, 1-30 5 %, 31-60 20 %, 61-90 50 %, 90+ 100 %.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from pydantic import BaseModel

from finance.money import round_money
from finance.reports import ReportTable, Scope, TableRow

ZERO = Decimal("0.00")
BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
DEFAULT_RATES: dict[str, Decimal] = {
    "current": Decimal("0.01"),
    "1-30": Decimal("0.05"),
    "31-60": Decimal("0.20"),
    "61-90": Decimal("0.50"),
    "90+": Decimal("1.00"),
}


def rates_or_default(configured: Mapping[str, Decimal] | None) -> dict[str, Decimal]:
    """Every bucket's rate: the configured one, else the default. A rate is a fraction from 0 to 1."""
    rates = {**DEFAULT_RATES, **(configured or {})}
    unknown = set(rates) - set(BUCKETS)
    if unknown:
        raise ValueError(f"unknown aging buckets: {sorted(unknown)}")
    for bucket, rate in rates.items():
        if not Decimal(0) <= rate <= Decimal(1):
            raise ValueError(f"the provisioning rate of {bucket} is not between 0 and 1: {rate}")
    return rates


class Group(BaseModel):
    """What the query returns: the loans of one bucket and product."""

    bucket: str | None  # None (no arrears) is current
    product_id: uuid.UUID
    product: str
    loans: int
    outstanding: Decimal


class PortfolioRow(BaseModel):
    bucket: str
    product_id: uuid.UUID
    product: str
    loans: int
    outstanding_principal: Decimal
    rate: Decimal
    provision: Decimal


class BucketTotal(BaseModel):
    bucket: str
    rate: Decimal
    loans: int
    outstanding_principal: Decimal
    provision: Decimal


class Portfolio(BaseModel):
    scope: Scope
    as_of: date
    rows: list[PortfolioRow]  # by bucket (current first), then product name
    buckets: list[BucketTotal]  # every bucket, empty ones too
    total_loans: int
    total_outstanding: Decimal
    total_provision: Decimal
    rates: dict[str, Decimal]
    note: str = (
        "Buckets are the loans' buckets now (the servicing workflow keeps no history of them); outstanding "
        "principal is each loan account's balance on the date."
    )


def _bucket_of(name: str | None) -> str:
    return name if name in BUCKETS else "current"


def portfolio(scope: Scope, as_of: date, groups: list[Group], rates: Mapping[str, Decimal]) -> Portfolio:
    rows = sorted(
        (
            PortfolioRow(
                bucket=_bucket_of(g.bucket),
                product_id=g.product_id,
                product=g.product,
                loans=g.loans,
                outstanding_principal=g.outstanding,
                rate=rates[_bucket_of(g.bucket)],
                provision=round_money(g.outstanding * rates[_bucket_of(g.bucket)]),
            )
            for g in groups
        ),
        key=lambda r: (BUCKETS.index(r.bucket), r.product, str(r.product_id)),
    )
    buckets = [
        BucketTotal(
            bucket=bucket,
            rate=rates[bucket],
            loans=sum(r.loans for r in rows if r.bucket == bucket),
            outstanding_principal=sum((r.outstanding_principal for r in rows if r.bucket == bucket), ZERO),
            provision=sum((r.provision for r in rows if r.bucket == bucket), ZERO),
        )
        for bucket in BUCKETS
    ]
    return Portfolio(
        scope=scope,
        as_of=as_of,
        rows=rows,
        buckets=buckets,
        total_loans=sum(b.loans for b in buckets),
        total_outstanding=sum((b.outstanding_principal for b in buckets), ZERO),
        total_provision=sum((b.provision for b in buckets), ZERO),
        rates=dict(rates),
    )


def _percent(rate: Decimal) -> str:
    return f"{(rate * 100).normalize():f} %"


def portfolio_table(report: Portfolio) -> ReportTable:
    rows: list[TableRow] = []
    for total in report.buckets:
        rows.append(TableRow(label=f"{total.bucket} (provision {_percent(total.rate)})", values=[], style="heading"))
        rows += [
            TableRow(label=r.product, values=[Decimal(r.loans), r.outstanding_principal, r.provision])
            for r in report.rows
            if r.bucket == total.bucket
        ]
        rows.append(
            TableRow(
                label=f"Total {total.bucket}",
                values=[Decimal(total.loans), total.outstanding_principal, total.provision],
                style="total",
            )
        )
    rows.append(
        TableRow(
            label="Portfolio",
            values=[Decimal(report.total_loans), report.total_outstanding, report.total_provision],
            style="total",
        )
    )
    for row in rows:
        row.values += [None] * (3 - len(row.values))
    return ReportTable(
        title="Loan portfolio and provisioning",
        subtitle=f"{report.scope.name}, as of {report.as_of}",
        columns=["Loans", "Outstanding principal", "Provision"],
        rows=rows,
    )

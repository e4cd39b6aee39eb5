"""The provider's transactions as our lines (activities/linked_imports.line_of) and the sandbox feed's paging."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from activities.linked_imports import BadLine, dedup_key, line_of
from sandbox.linking import INSTITUTIONS, SYNC_HISTORY, decode_cursor, derive_transactions

TXN = {
    "transaction_id": "t1",
    "account_id": "a1",
    "amount": "12.34",
    "iso_currency_code": "usd",
    "date": "2026-11-03",
    "name": "CORNER COFFEE #123",
    "merchant_name": "Corner Coffee",
    "personal_finance_category": {"primary": "FOOD_AND_DRINK"},
}


def test_money_out_is_negative_and_the_provider_category_is_kept():
    line = line_of(TXN)
    assert (line["amount"], line["currency"], line["posted_on"]) == (Decimal("-12.34"), "USD", date(2026, 11, 3))
    assert (line["category_key"], line["category_source"]) == ("dining", "provider")
    assert line["dedup_key"] == dedup_key("t1") != dedup_key("t2")
    income = line_of({**TXN, "amount": "-1500.00", "personal_finance_category": {"primary": "INCOME"}})
    assert (income["amount"], income["category_key"]) == (Decimal("1500.00"), "income")
    unknown = line_of({**TXN, "personal_finance_category": {"primary": "SOMETHING_NEW"}})
    assert (unknown["category_key"], unknown["category_source"]) == ("uncategorized", "default")


@pytest.mark.parametrize(
    "change",
    [{"amount": "1.234"}, {"amount": "0"}, {"amount": "NaN"}, {"amount": None}, {"date": "2026-13-01"}, {"date": None}],
)
def test_a_line_we_cannot_read_is_refused(change):
    with pytest.raises(BadLine):
        line_of({**TXN, **change})


def test_the_sandbox_feed_is_fixed_per_item_and_pages_by_cursor():
    today = datetime(2026, 12, 2, tzinfo=UTC).date()
    first = derive_transactions("item-1", INSTITUTIONS["ins_1"], today)
    assert first == derive_transactions("item-1", INSTITUTIONS["ins_1"], today)
    assert len(first) == SYNC_HISTORY * len(INSTITUTIONS["ins_1"].accounts)
    assert len({t.transaction_id for t in first}) == len(first)
    assert decode_cursor("") == 0 and decode_cursor(f"c{25:x}") == 25

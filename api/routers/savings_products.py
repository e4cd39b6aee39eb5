"""Savings products (an annual rate or rate tiers, and a day-count convention) and which deposit account earns
on which product. Superusers write; everyone signed in reads the active products. Products are deactivated,
never deleted: accruals reference them."""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.dialects.postgresql import insert

from api.crud import catalog_item, flush_unique_name, get_for_update, list_catalog
from api.deps import CurrentUser, DbDep, ReadSessionDep, SessionDep, allowed
from api.errors import AppError
from api.fields import AnnualRate, Filter, Money, Name, partial_model, validate_merged
from api.pagination import Page, PageDep
from core import audit
from core.access import Action, Entity
from core.cache import reference
from core.db import Database
from domain.accounts import visible_account
from finance.daycount import DayCount
from finance.interest import TieredRate
from models.base import utcnow
from models.interest import SavingsAccount, SavingsProduct
from models.ledger import AccountKind, AccountStatus, InternalAccountType
from models.users import User

router = APIRouter(tags=["savings products"])

ProductWriter = Annotated[User, Depends(allowed(Entity.savings_product, Action.write))]  # superuser

UpTo = Money


class Tier(BaseModel):
    model_config = ConfigDict(extra="forbid")
    up_to: UpTo | None = Field(description="the band's upper bound; null for the last, open band")
    rate: AnnualRate


class SavingsProductIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "Everyday savings", "annual_rate": "0.0365", "day_count": "actual/365"},
                {
                    "name": "Tiered saver",
                    "day_count": "30/360",
                    "tiers": [
                        {"up_to": "1000.00", "rate": "0.01"},
                        {"up_to": "5000.00", "rate": "0.02"},
                        {"up_to": None, "rate": "0.03"},
                    ],
                },
            ]
        },
    )

    name: Name = Field(examples=["Everyday savings"])
    annual_rate: AnnualRate | None = Field(default=None, description="a flat rate; give this or tiers")
    tiers: list[Tier] | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="each rate applies to the slice of the balance inside its band; "
        "bounds increase and the last band is open (up_to null)",
    )
    day_count: DayCount = Field(default=DayCount.ACTUAL_365, examples=["actual/365"])

    @model_validator(mode="after")
    def _rate_or_tiers(self):
        if (self.annual_rate is None) == (self.tiers is None):
            raise ValueError("give either annual_rate or tiers")
        if self.tiers is not None:
            TieredRate([(tier.up_to, tier.rate) for tier in self.tiers])  # its ValueError names the problem
        return self

    def columns(self) -> dict:
        values = self.model_dump(mode="json")
        # A tiered product's headline rate is its top band's.
        rate = self.annual_rate if self.tiers is None else self.tiers[-1].rate
        return {**values, "annual_rate": rate}


if TYPE_CHECKING:  # made at run time (see partial_model): to mypy, a BaseModel
    SavingsProductPatch = BaseModel
else:
    SavingsProductPatch = partial_model(
        SavingsProductIn,
        "SavingsProductPatch",
        active=(bool | None, Field(default=None, description="true reactivates")),
    )


class SavingsProductOut(BaseModel):
    id: uuid.UUID
    name: str
    annual_rate: Decimal
    tiers: list[Tier] | None
    day_count: str
    active: bool
    created_at: datetime
    updated_at: datetime | None


_FIELDS = ["name", "annual_rate", "tiers", "day_count", "active"]


@router.post(
    "/savings-products",
    response_model=SavingsProductOut,
    status_code=201,
    summary="Create a savings product (superuser)",
)
async def create_savings_product(body: SavingsProductIn, session: SessionDep, actor: ProductWriter):
    product = SavingsProduct(**body.columns())
    session.add(product)
    await flush_unique_name(session, "savings product", product.name)
    await audit.record(
        session,
        actor=actor.email,
        actor_id=actor.id,
        action="savings_product.created",
        entity_type="savings_product",
        entity_id=product.id,
        after=audit.snapshot(product, _FIELDS),
    )
    await session.commit()
    return product


@router.get(
    "/savings-products",
    response_model=Page[SavingsProductOut],
    summary="Savings products (active ones; inactive: superuser)",
)
async def list_savings_products(
    session: ReadSessionDep,
    user: CurrentUser,
    page: PageDep,
    active: Annotated[bool, Query(description="false lists the deactivated ones (superuser only)")] = True,
    day_count: DayCount | None = None,
    name: Annotated[Filter | None, Query(description="contains, case-insensitive")] = None,
):
    return await list_catalog(
        session, user, page, SavingsProduct, Entity.savings_product, active, name, day_count=day_count
    )


@router.get("/savings-products/{product_id}", response_model=SavingsProductOut, summary="One savings product")
async def get_savings_product(product_id: uuid.UUID, session: SessionDep, user: CurrentUser):
    return await catalog_item(session, user, SavingsProduct, product_id, Entity.savings_product)


async def _update(session, actor, product: SavingsProduct, changes: dict) -> SavingsProduct:
    before = audit.snapshot(product, _FIELDS)
    active = changes.pop("active", None)
    current = {
        "name": product.name,
        "day_count": product.day_count,
        **({"tiers": product.tiers} if product.tiers is not None else {"annual_rate": product.annual_rate}),
    }
    if "tiers" in changes or "annual_rate" in changes:  # switching between flat and tiered replaces the other
        current.pop("tiers", None), current.pop("annual_rate", None)
    valid = validate_merged(SavingsProductIn, current, changes)
    for field, value in valid.columns().items():
        setattr(product, field, value)
    if active is not None:
        product.active = active
    product.updated_at = utcnow()
    session.add(product)
    await flush_unique_name(session, "savings product", product.name)
    await audit.record(
        session,
        actor=actor.email,
        actor_id=actor.id,
        action="savings_product.updated",
        entity_type="savings_product",
        entity_id=product.id,
        before=before,
        after=audit.snapshot(product, _FIELDS),
    )
    await session.commit()
    return product


@router.put(
    "/savings-products/{product_id}",
    response_model=SavingsProductOut,
    summary="Replace a savings product's terms (superuser)",
    description="Days accrued already keep their amounts; the next accrual uses the new terms.",
)
async def replace_savings_product(
    product_id: uuid.UUID, body: SavingsProductIn, session: SessionDep, actor: ProductWriter
):
    product = await get_for_update(session, SavingsProduct, product_id, Entity.savings_product)
    return await _update(session, actor, product, body.model_dump(mode="json", exclude_none=True))


@router.patch(
    "/savings-products/{product_id}",
    response_model=SavingsProductOut,
    summary="Change some of a savings product's terms (superuser)",
)
async def update_savings_product(
    product_id: uuid.UUID, body: SavingsProductPatch, session: SessionDep, actor: ProductWriter
):
    product = await get_for_update(session, SavingsProduct, product_id, Entity.savings_product)
    return await _update(session, actor, product, body.model_dump(mode="json", exclude_unset=True))


@router.delete(
    "/savings-products/{product_id}",
    status_code=204,
    response_class=Response,
    summary="Deactivate a savings product (accounts on it keep accruing; superuser)",
)
async def deactivate_savings_product(product_id: uuid.UUID, session: SessionDep, actor: ProductWriter):
    product = await get_for_update(session, SavingsProduct, product_id, Entity.savings_product)
    if product.active:
        before = audit.snapshot(product, _FIELDS)
        product.active, product.updated_at = False, utcnow()
        session.add(product)
        await audit.record(
            session,
            actor=actor.email,
            actor_id=actor.id,
            action="savings_product.deactivated",
            entity_type="savings_product",
            entity_id=product.id,
            before=before,
            after=audit.snapshot(product, _FIELDS),
        )
        await session.commit()
    return Response(status_code=204)


# --- which account earns on which product ---------------------------------------------------------------------


class AccountProductIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product_id: uuid.UUID


class AccountProductOut(BaseModel):
    account_id: uuid.UUID
    product_id: uuid.UUID | None = Field(description="null: the account no longer accrues interest")
    product: SavingsProductOut | None


async def _account_product(session, db: Database, account_id: uuid.UUID) -> AccountProductOut:
    link = await session.get(SavingsAccount, account_id, populate_existing=True)  # after an upsert
    product = await reference.savings_product(db, link.product_id) if link and link.product_id else None
    return AccountProductOut(
        account_id=account_id,
        product_id=product.id if product else None,
        product=SavingsProductOut.model_validate(product, from_attributes=True) if product else None,
    )


@router.get(
    "/accounts/{account_id}/savings-product",
    response_model=AccountProductOut,
    tags=["accounts"],
    summary="The savings product the account earns interest on",
)
async def get_account_product(account_id: uuid.UUID, session: SessionDep, db: DbDep, user: CurrentUser):
    await visible_account(session, user, account_id)
    return await _account_product(session, db, account_id)


@router.put(
    "/accounts/{account_id}/savings-product",
    response_model=AccountProductOut,
    tags=["accounts"],
    summary="Attach a savings product to a deposit account (superuser)",
    description="From the next accrual on, the account earns interest on this product.",
)
async def attach_product(
    account_id: uuid.UUID, body: AccountProductIn, session: SessionDep, db: DbDep, actor: ProductWriter
):
    account = await visible_account(session, actor, account_id)
    if account.kind != AccountKind.internal or account.type == InternalAccountType.loan:
        raise AppError(422, "not_a_deposit_account", "only checking and savings accounts earn interest")
    if account.status != AccountStatus.active:
        raise AppError(409, "account_closed", "the account is closed")
    if account.currency != "USD":  # month-end posting pays from the USD interest expense account
        raise AppError(
            422,
            "currency_not_supported",
            f"savings products pay US dollars: the account holds {account.currency}",
            {"currency": account.currency},
        )
    product = await session.get(SavingsProduct, body.product_id)
    if product is None or not product.active:
        raise AppError(
            422,
            "unknown_savings_product",
            f"savings product {body.product_id} does not exist or is deactivated",
            {"product_id": str(body.product_id)},
        )
    link = await session.get(SavingsAccount, account_id, with_for_update=True)
    before = {"product_id": str(link.product_id) if link and link.product_id else None}
    await session.execute(
        insert(SavingsAccount)
        .values(account_id=account_id, product_id=product.id)
        .on_conflict_do_update(index_elements=["account_id"], set_={"product_id": product.id, "updated_at": utcnow()})
    )
    await audit.record(
        session,
        actor=actor.email,
        actor_id=actor.id,
        action="account.savings_product_set",
        entity_type="account",
        entity_id=account_id,
        before=before,
        after={"product_id": str(product.id)},
    )
    await session.commit()
    return await _account_product(session, db, account_id)


@router.delete(
    "/accounts/{account_id}/savings-product",
    status_code=204,
    response_class=Response,
    tags=["accounts"],
    summary="Stop an account's interest (superuser)",
    description="It accrues no more; what it accrued this month is still posted at month end.",
)
async def detach_product(account_id: uuid.UUID, session: SessionDep, actor: ProductWriter):
    await visible_account(session, actor, account_id)
    link = await session.get(SavingsAccount, account_id, with_for_update=True)
    if link and link.product_id:
        before = {"product_id": str(link.product_id)}
        link.product_id, link.updated_at = None, utcnow()
        session.add(link)
        await audit.record(
            session,
            actor=actor.email,
            actor_id=actor.id,
            action="account.savings_product_removed",
            entity_type="account",
            entity_id=account_id,
            before=before,
            after={"product_id": None},
        )
        await session.commit()
    return Response(status_code=204)

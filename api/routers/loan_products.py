"""Loan products: the rate, terms, amounts, amortization and fees a loan is written on. Superusers write;
everyone signed in reads the active ones. Products are deactivated, never deleted: loans reference them."""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.crud import catalog_item, flush_unique_name, get_for_update, list_catalog
from api.deps import CurrentUser, ReadSessionDep, SessionDep, allowed
from api.fields import AnnualRate, Filter, Money, MoneyOrZero, Name, not_below, partial_model, validate_merged
from api.pagination import Page, PageDep
from core import audit
from core.access import Action, Entity
from finance.amortization import AmortizationMethod, Frequency
from finance.daycount import DayCount
from models.base import utcnow
from models.loans import LoanProduct
from models.users import User

router = APIRouter(prefix="/loan-products", tags=["loan products"])

ProductWriter = Annotated[User, Depends(allowed(Entity.loan_product, Action.write))]  # superuser


class LoanProductIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Personal loan 36",
                    "annual_rate": "0.065",
                    "min_term": 6,
                    "max_term": 36,
                    "min_amount": "1000.00",
                    "max_amount": "25000.00",
                    "amortization": "declining_balance",
                    "frequency": "monthly",
                    "day_count": "30/360",
                    "grace_days": 10,
                    "late_fee": "25.00",
                }
            ]
        },
    )

    name: Name = Field(examples=["Personal loan 36"])
    annual_rate: AnnualRate
    min_term: int = Field(ge=1, le=1200, examples=[6], description="in periods of the frequency")
    max_term: int = Field(ge=1, le=1200, examples=[36], description="in periods of the frequency, >= min_term")
    min_amount: Money
    max_amount: Money = Field(description=">= min_amount")
    amortization: AmortizationMethod = Field(examples=["declining_balance"])
    frequency: Frequency = Field(default=Frequency.MONTHLY, examples=["monthly"])
    day_count: DayCount = Field(default=DayCount.THIRTY_360, examples=["30/360"])
    grace_days: int = Field(default=0, ge=0, le=365, description="days after a due date before the late fee")
    late_fee: MoneyOrZero = Decimal("0.00")

    _max_term_not_below_min = field_validator("max_term")(not_below("min_term"))
    _max_amount_not_below_min = field_validator("max_amount")(not_below("min_amount"))


if TYPE_CHECKING:  # made at run time (see partial_model): to mypy, a BaseModel
    LoanProductPatch = BaseModel
else:
    LoanProductPatch = partial_model(
        LoanProductIn, "LoanProductPatch", active=(bool | None, Field(default=None, description="true reactivates"))
    )


class LoanProductOut(BaseModel):
    id: uuid.UUID
    name: str
    annual_rate: Decimal
    min_term: int
    max_term: int
    min_amount: Decimal
    max_amount: Decimal
    amortization: str
    frequency: str
    day_count: str
    grace_days: int
    late_fee: Decimal
    active: bool
    created_at: datetime
    updated_at: datetime | None


_FIELDS = [*LoanProductIn.model_fields, "active"]


@router.post("", response_model=LoanProductOut, status_code=201, summary="Create a loan product (superuser)")
async def create_loan_product(body: LoanProductIn, session: SessionDep, actor: ProductWriter):
    product = LoanProduct(**body.model_dump())
    session.add(product)
    await flush_unique_name(session, "loan product", product.name)
    await audit.record(
        session,
        actor=actor.email,
        actor_id=actor.id,
        action="loan_product.created",
        entity_type="loan_product",
        entity_id=product.id,
        after=audit.snapshot(product, _FIELDS),
    )
    await session.commit()
    return product


@router.get("", response_model=Page[LoanProductOut], summary="Loan products (active ones; inactive: superuser)")
async def list_loan_products(
    session: ReadSessionDep,
    user: CurrentUser,
    page: PageDep,
    active: Annotated[bool, Query(description="false lists the deactivated ones (superuser only)")] = True,
    amortization: AmortizationMethod | None = None,
    name: Annotated[Filter | None, Query(description="contains, case-insensitive")] = None,
):
    return await list_catalog(
        session, user, page, LoanProduct, Entity.loan_product, active, name, amortization=amortization
    )


@router.get("/{product_id}", response_model=LoanProductOut, summary="One loan product")
async def get_loan_product(product_id: uuid.UUID, session: SessionDep, user: CurrentUser):
    return await catalog_item(session, user, LoanProduct, product_id, Entity.loan_product)


async def _update(session, actor, product: LoanProduct, changes: dict) -> LoanProduct:
    before = audit.snapshot(product, _FIELDS)
    active = changes.pop("active", None)
    valid = validate_merged(LoanProductIn, audit.snapshot(product, list(LoanProductIn.model_fields)), changes)
    for field, value in valid.model_dump().items():
        setattr(product, field, value)
    if active is not None:
        product.active = active
    product.updated_at = utcnow()
    session.add(product)
    await flush_unique_name(session, "loan product", product.name)
    await audit.record(
        session,
        actor=actor.email,
        actor_id=actor.id,
        action="loan_product.updated",
        entity_type="loan_product",
        entity_id=product.id,
        before=before,
        after=audit.snapshot(product, _FIELDS),
    )
    await session.commit()
    return product


@router.put(
    "/{product_id}",
    response_model=LoanProductOut,
    summary="Replace a loan product's terms (superuser)",
    description="Loans already written keep their own terms and schedules; new loans use the new terms.",
)
async def replace_loan_product(product_id: uuid.UUID, body: LoanProductIn, session: SessionDep, actor: ProductWriter):
    product = await get_for_update(session, LoanProduct, product_id, Entity.loan_product)
    return await _update(session, actor, product, body.model_dump())


@router.patch(
    "/{product_id}",
    response_model=LoanProductOut,
    summary="Change some of a loan product's terms (superuser)",
    description="Only the fields given change; the result is validated as a whole (e.g. min_term <= max_term). "
    "`active: true` reactivates a product.",
)
async def update_loan_product(product_id: uuid.UUID, body: LoanProductPatch, session: SessionDep, actor: ProductWriter):
    return await _update(
        session,
        actor,
        await get_for_update(session, LoanProduct, product_id, Entity.loan_product),
        body.model_dump(exclude_unset=True),
    )


@router.delete(
    "/{product_id}",
    status_code=204,
    response_class=Response,
    summary="Deactivate a loan product (soft: loans keep referencing it; superuser)",
)
async def deactivate_loan_product(product_id: uuid.UUID, session: SessionDep, actor: ProductWriter):
    product = await get_for_update(session, LoanProduct, product_id, Entity.loan_product)
    if product.active:
        before = audit.snapshot(product, _FIELDS)
        product.active, product.updated_at = False, utcnow()
        session.add(product)
        await audit.record(
            session,
            actor=actor.email,
            actor_id=actor.id,
            action="loan_product.deactivated",
            entity_type="loan_product",
            entity_id=product.id,
            before=before,
            after=audit.snapshot(product, _FIELDS),
        )
        await session.commit()
    return Response(status_code=204)

"""Loan products: the rate, terms, amounts, amortization and fees a loan is written on. Superusers write;
everyone signed in reads the active ones. Products are deactivated, never deleted: loans reference them."""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, create_model
from pydantic import field_validator

from api.crud import catalog_item, flush_unique_name, get_for_update, list_catalog
from api.deps import CurrentUser, SessionDep, allowed
from api.errors import AppError
from api.pagination import Page, PageDep
from core.access import Action, Entity
from core import audit
from finance.amortization import AmortizationMethod, Frequency
from finance.daycount import DayCount
from models.users import User
from models.base import utcnow
from models.loans import LoanProduct

router = APIRouter(prefix="/loan-products", tags=["loan products"])

ProductWriter = Annotated[User, Depends(allowed(Entity.loan_product, Action.write))]  # superuser

# Numbers are quantized to the column's scale, so a response shows what GET will show later ("0.065" -> "0.065000").
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
AnnualRate = Annotated[Decimal, Field(ge=0, lt=1, decimal_places=6, examples=["0.065"],
                                      description="a yearly fraction, 0 <= rate < 1, at most 6 decimals: 0.065 is 6.5 %"),
                       AfterValidator(lambda rate: rate.quantize(Decimal("0.000001")))]
Money = Annotated[Decimal, Field(gt=0, max_digits=15, decimal_places=2, examples=["1000.00"]),
                  AfterValidator(lambda amount: amount.quantize(Decimal("0.01")))]
MoneyOrZero = Annotated[Decimal, Field(ge=0, max_digits=15, decimal_places=2, examples=["25.00"]),
                        AfterValidator(lambda amount: amount.quantize(Decimal("0.01")))]


def not_below(lower_field: str):
    """A field validator: this field must be >= `lower_field` (when that one was valid)."""
    def check(value, info):
        lower = info.data.get(lower_field)
        if value is not None and lower is not None and value < lower:
            raise ValueError(f"must be at least {lower_field} ({lower})")
        return value
    return check


class LoanProductIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "Personal loan 36", "annual_rate": "0.065", "min_term": 6, "max_term": 36,
        "min_amount": "1000.00", "max_amount": "25000.00", "amortization": "declining_balance",
        "frequency": "monthly", "day_count": "30/360", "grace_days": 10, "late_fee": "25.00"}]})

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


def partial_model(model: type[BaseModel], name: str, **more_fields: Any) -> type[BaseModel]:
    """`model` with every field optional, for PATCH: the merged result is validated with `model` itself."""
    fields = {field: (info.annotation | None, Field(default=None, description=info.description, examples=info.examples))
              for field, info in model.model_fields.items()}
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields, **more_fields)


def validate_merged(model: type[BaseModel], current: dict, changes: dict) -> BaseModel:
    """`current` with `changes` applied, validated as `model`; a 422 shaped like FastAPI's, naming the fields."""
    try:
        return model.model_validate({**current, **changes})
    except ValidationError as exc:
        details = [{"loc": ["body", *e["loc"]], "message": e["msg"], "type": e["type"]} for e in exc.errors()]
        raise AppError(422, "validation_error", "the request is not valid", details)


LoanProductPatch = partial_model(LoanProductIn, "LoanProductPatch",
                                 active=(bool | None, Field(default=None, description="true reactivates")))


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
    await audit.record(session, actor=actor.email, actor_id=actor.id, action="loan_product.created",
                       entity_type="loan_product", entity_id=product.id, after=audit.snapshot(product, _FIELDS))
    await session.commit()
    return product


@router.get("", response_model=Page[LoanProductOut], summary="Loan products (active ones; inactive: superuser)")
async def list_loan_products(
        session: SessionDep, user: CurrentUser, page: PageDep,
        active: Annotated[bool, Query(description="false lists the deactivated ones (superuser only)")] = True,
        amortization: AmortizationMethod | None = None,
        name: Annotated[str | None, Query(description="contains, case-insensitive")] = None):
    return await list_catalog(session, user, page, LoanProduct, Entity.loan_product, active, name,
                              amortization=amortization)


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
    await audit.record(session, actor=actor.email, actor_id=actor.id, action="loan_product.updated",
                       entity_type="loan_product", entity_id=product.id, before=before,
                       after=audit.snapshot(product, _FIELDS))
    await session.commit()
    return product


@router.put("/{product_id}", response_model=LoanProductOut, summary="Replace a loan product's terms (superuser)",
            description="Loans already written keep their own terms and schedules; new loans use the new terms.")
async def replace_loan_product(product_id: uuid.UUID, body: LoanProductIn, session: SessionDep, actor: ProductWriter):
    product = await get_for_update(session, LoanProduct, product_id, Entity.loan_product)
    return await _update(session, actor, product, body.model_dump())


@router.patch("/{product_id}", response_model=LoanProductOut, summary="Change some of a loan product's terms (superuser)",
              description="Only the fields given change; the result is validated as a whole (e.g. min_term <= max_term). "
                          "`active: true` reactivates a product.")
async def update_loan_product(product_id: uuid.UUID, body: LoanProductPatch, session: SessionDep, actor: ProductWriter):
    return await _update(session, actor, await get_for_update(session, LoanProduct, product_id, Entity.loan_product),
                         body.model_dump(exclude_unset=True))


@router.delete("/{product_id}", status_code=204, response_class=Response,
               summary="Deactivate a loan product (soft: loans keep referencing it; superuser)")
async def deactivate_loan_product(product_id: uuid.UUID, session: SessionDep, actor: ProductWriter):
    product = await get_for_update(session, LoanProduct, product_id, Entity.loan_product)
    if product.active:
        before = audit.snapshot(product, _FIELDS)
        product.active, product.updated_at = False, utcnow()
        session.add(product)
        await audit.record(session, actor=actor.email, actor_id=actor.id, action="loan_product.deactivated",
                           entity_type="loan_product", entity_id=product.id, before=before,
                           after=audit.snapshot(product, _FIELDS))
        await session.commit()
    return Response(status_code=204)

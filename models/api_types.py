"""Pydantic types shared by the API's request bodies."""

from decimal import Decimal
from typing import Annotated

from pydantic import Field

# Money in requests: a positive amount in dollars with at most two decimals, given as a string or a number.
PositiveMoney = Annotated[Decimal, Field(gt=0, max_digits=15, decimal_places=2, examples=["125.00"])]

"""The field types of the API's requests: bodies, query filters, forms and headers.

Strict on purpose (PRODUCT.md §3.5: bad input is a clear 4xx and writes nothing):

- **Money and rates** are plain ASCII decimal strings (`"1250.00"`, `"0.065"`) or JSON numbers, with at most the
  allowed decimal places: no `_`, no surrounding spaces, no exponent in a string, no non-ASCII digits (Python's
  `Decimal("١٢٣")` is 123), no sign (a `-0` rate or fee is refused like any negative), nothing infinite. The
  OpenAPI says so with a `pattern` for the string form.
- **Text** (every JSON string field, query filter and form field) refuses control characters — NUL above all, which
  Postgres cannot store — and lone UTF-16 surrogates (`"\\ud800"` in JSON), which cannot be encoded at all.
  `Line` is one line; `Text` may also hold tabs and line breaks.
- **Dates** are business dates: 1900-01-01 to 2199-12-31 (`BusinessDate`, e.g. filters); a due date is at most
  `MAX_DUE_YEARS` (50) years ahead. Date-times in filters are in the same range, with a UTC offset of at most
  14 hours (Postgres refuses offsets past 15:59; no real zone is past 14:00).
"""

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Optional, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    create_model,
)

from api.errors import AppError

# --- numbers ---------------------------------------------------------------------------------------------------

MONEY_INTEGER_DIGITS = 13  # NUMERIC(15, 2)
MONEY_PATTERN = r"^[0-9]{1,13}(\.[0-9]{1,2})?$"
RATE_PATTERN = r"^0(\.[0-9]{1,6})?$"
MONEY_RE, RATE_RE = re.compile(MONEY_PATTERN, re.ASCII), re.compile(RATE_PATTERN, re.ASCII)


def _strict_decimal(pattern: re.Pattern, shape: str):
    """A before-validator: an ASCII string matching `pattern`, a JSON number (not a boolean), or a Decimal (from
    our own code, e.g. a row's current value when a PATCH is merged) — as a finite, unsigned Decimal."""

    def parse(value: Any) -> Decimal:
        if isinstance(value, bool):
            raise ValueError(f"must be {shape}, not a boolean")
        if isinstance(value, str):
            if not pattern.fullmatch(value):
                raise ValueError(
                    f"must be {shape}: ASCII digits with an optional '.', no sign, spaces, '_' or exponent"
                )
            return Decimal(value)
        if isinstance(value, (int, float)):
            try:
                value = Decimal(str(value))
            except InvalidOperation:
                raise ValueError(f"must be {shape}") from None
        if not isinstance(value, Decimal):
            raise ValueError(f"must be {shape}")
        if not value.is_finite():
            raise ValueError("must be a finite number")
        if value.is_signed():
            raise ValueError("must not be negative (nor -0)")
        return value

    return parse


def _quantizer(exponent: str):
    step = Decimal(exponent)
    return lambda value: value.quantize(step)


def _decimal_schema(pattern: str, example: str, description: str, positive: bool = False) -> WithJsonSchema:
    number = {"type": "number", "exclusiveMinimum": 0} if positive else {"type": "number", "minimum": 0}
    return WithJsonSchema(
        {"anyOf": [{"type": "string", "pattern": pattern}, number], "examples": [example], "description": description}
    )


_MONEY = _strict_decimal(MONEY_RE, "an amount with at most 2 decimals")
_MONEY_DOC = 'an amount in dollars: a string of ASCII digits with at most 2 decimals ("1250.00"), or a JSON number'

# Numbers are quantized to the column's scale, so a response shows what GET will show later ("25" -> "25.00").
Money = Annotated[
    Decimal,
    BeforeValidator(_MONEY),
    Field(gt=0, max_digits=15, decimal_places=2),
    AfterValidator(_quantizer("0.01")),
    _decimal_schema(MONEY_PATTERN, "1000.00", _MONEY_DOC + ", > 0", positive=True),
]
MoneyOrZero = Annotated[
    Decimal,
    BeforeValidator(_MONEY),
    Field(ge=0, max_digits=15, decimal_places=2),
    AfterValidator(_quantizer("0.01")),
    _decimal_schema(MONEY_PATTERN, "25.00", _MONEY_DOC),
]
AnnualRate = Annotated[
    Decimal,
    BeforeValidator(_strict_decimal(RATE_RE, "a yearly fraction, 0 <= rate < 1")),
    Field(ge=0, lt=1, decimal_places=6),
    AfterValidator(_quantizer("0.000001")),
    _decimal_schema(RATE_PATTERN, "0.065", 'a yearly fraction, 0 <= rate < 1, at most 6 decimals: "0.065" is 6.5 %'),
]

SIGNED_MONEY_PATTERN = r"^-?[0-9]{1,13}(\.[0-9]{1,2})?$"
_SIGNED_MONEY_RE = re.compile(SIGNED_MONEY_PATTERN, re.ASCII)
_UNSIGNED_MONEY = _strict_decimal(MONEY_RE, "an amount with at most 2 decimals")


def _signed_money(value: Any) -> Decimal:
    """Money with an optional leading '-' (a journal entry's leg: debit positive, credit negative)."""
    if isinstance(value, str):
        if not _SIGNED_MONEY_RE.fullmatch(value):
            raise ValueError("must be an amount with at most 2 decimals: ASCII digits, an optional '-' and '.'")
        return -_UNSIGNED_MONEY(value[1:]) if value.startswith("-") else _UNSIGNED_MONEY(value)
    if isinstance(value, Decimal) and value.is_finite() and value < 0:  # a validated model's, validated again
        return -_UNSIGNED_MONEY(-value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        return -_UNSIGNED_MONEY(-value)
    return _UNSIGNED_MONEY(value)


SignedMoney = Annotated[
    Decimal,
    BeforeValidator(_signed_money),
    Field(max_digits=15, decimal_places=2),
    AfterValidator(_quantizer("0.01")),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": SIGNED_MONEY_PATTERN},
                {"type": "number", "minimum": -9999999999999.99, "maximum": 9999999999999.99},
            ],
            "examples": ["-250.00"],
            "description": "a signed amount in dollars (debit positive, credit negative), at most 2 decimals",
        }
    ),
]
# A query filter on amounts (min_amount, max_amount): the same shape as Money, zero allowed.
MoneyFilter = MoneyOrZero

# --- text --------------------------------------------------------------------------------------------------------

# C0 controls, DEL and C1 controls; `Text` lets tab, line feed and carriage return through. Also the characters that
# make text read other than it is: the bidirectional embeddings, overrides and isolates (U+202A-202E, U+2066-2069:
# "Trojan Source"; an organization's name could pass for another's in a list or an email) and the invisible zero-width
# space, word joiner and BOM (U+200B, U+2060, U+FEFF). Zero-width (non-)joiners and the LRM/RLM marks stay: scripts
# and emoji need them. Lone surrogates are refused by the validator (they cannot be written in a JSON-Schema pattern
# portably).
_INVISIBLE = r"\u200b\u202a-\u202e\u2060\u2066-\u2069\ufeff"
_LINE_REFUSED = r"\x00-\x1f\x7f-\x9f" + _INVISIBLE  # as a character class's ranges
_TEXT_REFUSED = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f" + _INVISIBLE
LINE_PATTERN = rf"^[^{_LINE_REFUSED}]*$"
TEXT_PATTERN = rf"^[^{_TEXT_REFUSED}]*$"
_LINE_BAD = re.compile(rf"[{_LINE_REFUSED}\ud800-\udfff]")
_TEXT_BAD = re.compile(rf"[{_TEXT_REFUSED}\ud800-\udfff]")


def _clean(bad: re.Pattern, what: str):
    def check(value: Any) -> Any:
        if isinstance(value, str) and (found := bad.search(value)) is not None:
            raise ValueError(
                f"{what} must not contain control characters, bidirectional overrides, invisible characters or "
                f"lone surrogates (found U+{ord(found.group()):04X} at {found.start()})"
            )
        return value

    return check


# Before any stripping: a trailing control character is refused, not silently cut off.
_line = BeforeValidator(_clean(_LINE_BAD, "text"))
_text = BeforeValidator(_clean(_TEXT_BAD, "text"))


def _string_schema(pattern: str, min_length: int, max_length: int) -> WithJsonSchema:
    # The whole schema, not an extra on a Field: it survives wrapping (Optional, a PATCH model's copy of the type).
    return WithJsonSchema({"type": "string", "minLength": min_length, "maxLength": max_length, "pattern": pattern})


def line_rules(max_length: int, min_length: int = 0, strip: bool = False) -> tuple[Any, ...]:
    """One line of text of at most `max_length` characters (stripped first when `strip`), as the metadata of a
    field typed `Annotated[str, *line_rules(...)]` (a type mypy reads as `str`)."""
    return (
        StringConstraints(strip_whitespace=strip, min_length=min_length, max_length=max_length),
        _string_schema(LINE_PATTERN, min_length, max_length),
        _line,
    )


def multiline_rules(max_length: int, min_length: int = 0) -> tuple[Any, ...]:
    """Free text that may span lines, of at most `max_length` characters: `Annotated[str, *multiline_rules(...)]`."""
    return (
        StringConstraints(min_length=min_length, max_length=max_length),
        _string_schema(TEXT_PATTERN, min_length, max_length),
        _text,
    )


def line(max_length: int, min_length: int = 0, strip: bool = False) -> Any:
    """`Annotated[str, *line_rules(...)]` as a value (for `create_model` and the like)."""
    return Annotated[str, *line_rules(max_length, min_length, strip)]


def multiline(max_length: int, min_length: int = 0) -> Any:
    """`Annotated[str, *multiline_rules(...)]` as a value."""
    return Annotated[str, *multiline_rules(max_length, min_length)]


Name = Annotated[str, *line_rules(120, 1, strip=True)]
# A query filter on text (names, codes, ids as text): one line, at most 200 characters.
Filter = Annotated[str, *line_rules(200)]
# Opaque ASCII tokens: JWTs, provider tokens, idempotency keys.
TOKEN_PATTERN = r"^[A-Za-z0-9_.~+/=-]+$"
Token = Annotated[str, Field(min_length=1, max_length=4096, pattern=TOKEN_PATTERN)]
KEY_PATTERN = r"^[\x21-\x7e]+$"  # visible ASCII

# --- dates -------------------------------------------------------------------------------------------------------

MIN_DATE, MAX_DATE = date(1900, 1, 1), date(2199, 12, 31)
MAX_DUE_YEARS = 50
MAX_UTC_OFFSET = timedelta(hours=14)


def _in_range(value: date) -> date:
    if not MIN_DATE <= value <= MAX_DATE:
        raise ValueError(f"must be between {MIN_DATE} and {MAX_DATE}")
    return value


def _due(value: date) -> date:
    today = datetime.now(UTC).date()  # a bound 50 years out: a day either side of the business date is immaterial
    try:
        latest = today.replace(year=today.year + MAX_DUE_YEARS)
    except ValueError:  # 29 February
        latest = today.replace(year=today.year + MAX_DUE_YEARS, day=28)
    if value > latest:
        raise ValueError(f"must be at most {MAX_DUE_YEARS} years ahead (by {latest})")
    return value


def _moment(value: datetime) -> datetime:
    _in_range(value.date())
    offset = value.utcoffset()
    if offset is not None and abs(offset) > MAX_UTC_OFFSET:
        raise ValueError("the UTC offset must be at most 14 hours")
    return value


BusinessDate = Annotated[date, AfterValidator(_in_range), Field(description=f"a date from {MIN_DATE} to {MAX_DATE}")]
DueDate = Annotated[
    date, AfterValidator(_in_range), AfterValidator(_due), Field(description=f"at most {MAX_DUE_YEARS} years ahead")
]
BusinessDateTime = Annotated[
    datetime,
    AfterValidator(_moment),
    Field(description=f"ISO 8601, from {MIN_DATE} to {MAX_DATE}, UTC offset at most 14 h"),
]

# --- integers ----------------------------------------------------------------------------------------------------

BIGINT_MAX = 2**63 - 1  # Postgres BIGINT: LIMIT, OFFSET and identity columns

# --- PATCH helpers -----------------------------------------------------------------------------------------------


def not_below(lower_field: str):
    """A field validator: this field must be >= `lower_field` (when that one was valid)."""

    def check(value, info):
        lower = info.data.get(lower_field)
        if value is not None and lower is not None and value < lower:
            raise ValueError(f"must be at least {lower_field} ({lower})")
        return value

    return check


ModelT = TypeVar("ModelT", bound=BaseModel)


def partial_model(model: type[BaseModel], name: str, **more_fields: Any) -> type[BaseModel]:
    """`model` with every field optional, for PATCH: the merged result is validated with `model` itself.

    mypy cannot see the fields of a model made at run time: a module declares its PATCH body as a `BaseModel` to it
    (`if TYPE_CHECKING: XPatch = BaseModel`), which is all a handler uses (`model_dump`)."""
    fields: dict[str, Any] = {
        field: (
            Optional[info.rebuild_annotation()],  # noqa: UP045 (`|` refuses a string annotation)
            Field(default=None, description=info.description, examples=info.examples),
        )
        for field, info in model.model_fields.items()
    }
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields, **more_fields)


def validate_merged(model: type[ModelT], current: dict, changes: dict) -> ModelT:
    """`current` with `changes` applied, validated as `model`; a 422 shaped like FastAPI's, naming the fields."""
    try:
        return model.model_validate({**current, **changes})
    except ValidationError as exc:
        details = [{"loc": ["body", *e["loc"]], "message": e["msg"], "type": e["type"]} for e in exc.errors()]
        raise AppError(422, "validation_error", "the request is not valid", details) from exc


__all__ = [
    "BIGINT_MAX",
    "AnnualRate",
    "BusinessDate",
    "BusinessDateTime",
    "DueDate",
    "Filter",
    "Money",
    "MoneyFilter",
    "MoneyOrZero",
    "Name",
    "SignedMoney",
    "Token",
    "line",
    "line_rules",
    "multiline",
    "multiline_rules",
    "not_below",
    "partial_model",
    "validate_merged",
]


# A code of an authenticator app (6 digits) or an MFA recovery code (XXXX-XXXX-XXXX-XXXX).
MfaCode = Annotated[
    str,
    Field(
        min_length=6,
        max_length=40,
        pattern=r"^[A-Za-z0-9 -]+$",
        description="a 6-digit code of the authenticator app, or a recovery code",
        examples=["123456"],
    ),
]

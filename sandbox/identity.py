"""An identity-verification service (KYC screening): pass, refer or fail, the same answer for the same input.

Stateless: the answer is derived from the request, so a retry (or a restart) answers the same.

API (fault injection applies, see app.py):
  POST /identity/verifications  `Authorization: Bearer <identity_api_key>`; `Idempotency-Key` optional (ignored:
      the answer depends on the body only).
      body {"reference": non-empty, "full_name", "date_of_birth": YYYY-MM-DD, "address", "national_id_last4": 4
            digits}; other fields are refused.
      200 {"reference", "result": "pass"|"refer"|"fail", "reasons": [...], "watchlist_hit": bool}
      401 UNAUTHORIZED, 400 INVALID_REQUEST.

How the answer is derived, first rule that applies:
  - the name (case and spacing ignored) is on WATCH_LIST: refer, reasons ["watchlist_hit"], watchlist_hit true;
  - national_id_last4 "0000": fail, ["identity_mismatch"] (the id does not belong to that name);
  - younger than 18 on the day of the request: fail, ["underage"];
  - national_id_last4 "9999": refer, ["thin_file"] (too little history to verify automatically);
  - otherwise pass.
"""

import hmac
import logging
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

log = logging.getLogger("sandbox.identity")

# Names the screening's sanctions list holds (a real provider checks OFAC and others).
WATCH_LIST = frozenset({"ivan watchlist", "sanctioned person", "vera blocked"})
MISMATCH_ID, THIN_FILE_ID = "0000", "9999"
ADULT_AGE = 18

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class VerificationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    full_name: Text
    date_of_birth: date
    address: Text
    national_id_last4: str = Field(pattern=r"^[0-9]{4}$")


class VerificationOut(BaseModel):
    reference: str
    result: Literal["pass", "refer", "fail"]
    reasons: list[str]
    watchlist_hit: bool


def age_on(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def screen(request: VerificationRequest, today: date) -> VerificationOut:
    """The answer for a request (see the module docstring)."""

    def answer(result: Literal["pass", "refer", "fail"], *reasons: str, hit: bool = False) -> VerificationOut:
        return VerificationOut(reference=request.reference, result=result, reasons=list(reasons), watchlist_hit=hit)

    if " ".join(request.full_name.lower().split()) in WATCH_LIST:
        return answer("refer", "watchlist_hit", hit=True)
    if request.national_id_last4 == MISMATCH_ID:
        return answer("fail", "identity_mismatch")
    if age_on(request.date_of_birth, today) < ADULT_AGE:
        return answer("fail", "underage")
    if request.national_id_last4 == THIN_FILE_ID:
        return answer("refer", "thin_file")
    return answer("pass")


router = APIRouter(prefix="/identity", tags=["identity"])


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "error_message": message}, status_code=status)


@router.post(
    "/verifications",
    response_model=VerificationOut,
    responses={400: {}, 401: {}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": VerificationRequest.model_json_schema()}},
        }
    },
)
async def verify(request: Request, authorization: str | None = Header(None)) -> JSONResponse:
    body = await request.body()
    expected = f"Bearer {request.app.state.settings.identity_api_key}".encode()
    if not hmac.compare_digest((authorization or "").encode(), expected):
        return _error(401, "UNAUTHORIZED", "missing or invalid bearer API key")
    try:
        parsed = VerificationRequest.model_validate_json(body)
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) or "body" for e in exc.errors())
        return _error(400, "INVALID_REQUEST", f"invalid request body: {fields}")
    out = screen(parsed, datetime.now(UTC).date())
    log.info("verification %s: %s %s", out.reference, out.result, out.reasons)
    return JSONResponse(out.model_dump(mode="json"))

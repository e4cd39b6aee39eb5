"""A credit bureau: answers a credit report for an applicant, the same one every time.

State lives in memory; a restart forgets every report (but not the scores: they are derived, not stored).

Bureau API (fault injection applies, see app.py):
  POST /bureau/reports  `Authorization: Bearer <bureau_api_key>`; `Idempotency-Key` optional.
      body {"applicant_id": UUID, "full_name": non-empty, "purpose": "loan"|"credit_line",
            "amount": decimal > 0, at most 2 places (string or number)}; other fields are refused.
      200 {"report_id", "applicant_id", "score": 300..850, "band", "open_tradelines", "delinquencies",
           "bankruptcy", "generated_at": ISO-8601 UTC}
      401 UNAUTHORIZED, 403 FORBIDDEN (the key is valid but not entitled: "forbidden" in _control),
      400 INVALID_REQUEST, 404 NO_FILE, 409 IDEMPOTENCY_KEY_REUSED (the key was used with another body).
      The same Idempotency-Key with the same body answers the stored report again (same report_id).
      Checked in this order: authorization, body, idempotency key, file.
Instrumentation for tests (never faulted, like /_control):
  GET /bureau/reports       every request that reached the bureau (injected faults never do), oldest first.
  GET/PUT /bureau/_control  {"bureau_api_key", "fixed_scores": {applicant_id: score}, "forbidden": bool}; PUT
      changes only the fields present; fixed_scores are merged (a null score removes that applicant's override)
      unless "fixed_scores_mode": "replace". Another bureau_api_key than the client's makes the bureau answer
      401; "forbidden": true makes it answer 403 to the right key (our account lost its entitlement).

How a report is derived (`derive_report`), d = sha256(str(applicant_id)) over the canonical lowercase,
hyphenated UUID:
  - an applicant in fixed_scores gets that score (and always has a file);
  - otherwise, an applicant id whose first hex digit is 'f' has no file: 404 NO_FILE;
  - otherwise score = 300 + int.from_bytes(d[0:4], "big") % 551 (uniform over 300..850);
  - band: excellent >= 750, good >= 700, fair >= 650, poor >= 580, very_poor below;
  - open_tradelines = d[4] % 16;
  - delinquencies = d[5] % (MAX_DELINQUENCIES[band] + 1), so 0 for excellent;
  - bankruptcy = band is very_poor and d[6] % 4 == 0.
"""

import hashlib
import hmac
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from sandbox.settings import SandboxSettings

log = logging.getLogger("sandbox.bureau")

MIN_SCORE, MAX_SCORE = 300, 850
Band = Literal["excellent", "good", "fair", "poor", "very_poor"]
BANDS: list[tuple[int, Band]] = [
    (750, "excellent"),
    (700, "good"),
    (650, "fair"),
    (580, "poor"),
    (MIN_SCORE, "very_poor"),
]
MAX_DELINQUENCIES = {"excellent": 0, "good": 1, "fair": 2, "poor": 4, "very_poor": 8}
NO_FILE_PREFIX = "f"

Score = Annotated[int, Field(ge=MIN_SCORE, le=MAX_SCORE)]


def band_of(score: int) -> Band:
    return next(band for floor, band in BANDS if score >= floor)


def has_file(applicant_id: uuid.UUID) -> bool:
    return not str(applicant_id).startswith(NO_FILE_PREFIX)


def derive_report(applicant_id: uuid.UUID, fixed_score: int | None = None) -> dict[str, Any]:
    """The report's content for an applicant who has a file (see the module docstring)."""
    digest = hashlib.sha256(str(applicant_id).encode()).digest()
    score = (
        fixed_score
        if fixed_score is not None
        else MIN_SCORE + int.from_bytes(digest[:4], "big") % (MAX_SCORE - MIN_SCORE + 1)
    )
    band = band_of(score)
    return {
        "score": score,
        "band": band,
        "open_tradelines": digest[4] % 16,
        "delinquencies": digest[5] % (MAX_DELINQUENCIES[band] + 1),
        "bankruptcy": band == "very_poor" and digest[6] % 4 == 0,
    }


# --- wire shapes and runtime configuration -----------------------------------------------------------


class ReportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is a client bug worth hearing about

    applicant_id: uuid.UUID
    full_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    purpose: Literal["loan", "credit_line"]
    amount: Decimal = Field(gt=0, max_digits=14, decimal_places=2)


class CreditReportOut(BaseModel):
    report_id: str
    applicant_id: uuid.UUID
    score: Score
    band: Band
    open_tradelines: int
    delinquencies: int
    bankruptcy: bool
    generated_at: str


class BureauConfig(BaseModel):
    bureau_api_key: str
    fixed_scores: dict[uuid.UUID, Score]
    forbidden: bool = False  # the key is right but not entitled to reports: 403


class BureauConfigUpdate(BaseModel):
    """PUT body: only the fields present change."""

    model_config = ConfigDict(extra="forbid")

    bureau_api_key: str | None = None
    fixed_scores: dict[uuid.UUID, Score | None] | None = None
    forbidden: bool | None = None
    fixed_scores_mode: Literal["merge", "replace"] = "merge"


# --- state -------------------------------------------------------------------------------------------


@dataclass
class StoredReport:
    request: ReportRequest
    report: CreditReportOut


class BureauError(Exception):
    def __init__(self, status: int, error_code: str, error_message: str):
        self.status, self.body = status, {"error_code": error_code, "error_message": error_message}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class BureauState:
    """Config, reports by idempotency key and the request log. Handlers never await while using it, so
    each request is atomic on the event loop."""

    def __init__(self, settings: SandboxSettings):
        self.config = BureauConfig(bureau_api_key=settings.bureau_api_key, fixed_scores=settings.bureau_fixed_scores)
        self.reports_by_key: dict[str, StoredReport] = {}
        self.log: list[dict[str, Any]] = []

    def authenticate(self, authorization: str | None) -> None:
        expected = f"Bearer {self.config.bureau_api_key}".encode()
        if not hmac.compare_digest((authorization or "").encode(), expected):
            raise BureauError(401, "UNAUTHORIZED", "missing or invalid bearer API key")
        if self.config.forbidden:
            raise BureauError(403, "FORBIDDEN", "this API key is not entitled to credit reports")

    def report(self, request: ReportRequest, key: str | None) -> tuple[CreditReportOut, bool]:
        """(report, replayed) for a valid request; raises BureauError when there is none to give."""
        stored = self.reports_by_key.get(key) if key else None
        if stored is not None:
            if stored.request != request:  # compares parsed values: "12500" and "12500.00" are the same amount
                raise BureauError(
                    409, "IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used for a different request"
                )
            return stored.report, True
        fixed_score = self.config.fixed_scores.get(request.applicant_id)
        if fixed_score is None and not has_file(request.applicant_id):
            raise BureauError(404, "NO_FILE", f"no credit file for applicant {request.applicant_id}")
        report = CreditReportOut(
            report_id=f"rpt_{uuid.uuid4().hex}",
            applicant_id=request.applicant_id,
            generated_at=_now(),
            **derive_report(request.applicant_id, fixed_score),
        )
        if key:
            self.reports_by_key[key] = StoredReport(request, report)
        return report, False

    def update(self, change: BureauConfigUpdate) -> BureauConfig:
        fields = change.model_dump(exclude_unset=True, exclude={"fixed_scores_mode"})
        if change.fixed_scores is not None:
            base: dict[uuid.UUID, int | None] = (
                {} if change.fixed_scores_mode == "replace" else dict(self.config.fixed_scores)
            )
            base.update(change.fixed_scores)
            fields["fixed_scores"] = {applicant: score for applicant, score in base.items() if score is not None}
        try:
            # Re-validated whole, so a null api key is refused rather than stored.
            self.config = BureauConfig.model_validate({**self.config.model_dump(), **fields})
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False)) from None
        return self.config


# --- routes ------------------------------------------------------------------------------------------

router = APIRouter(prefix="/bureau", tags=["bureau"])  # the bureau's API: fault injection applies
control_router = APIRouter(prefix="/bureau", tags=["bureau control"])  # test instrumentation: never faulted


def _state(request: Request) -> BureauState:
    return request.app.state.bureau


def _parse(body: bytes) -> ReportRequest:
    try:
        return ReportRequest.model_validate_json(body)
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) or "body" for e in exc.errors())
        raise BureauError(400, "INVALID_REQUEST", f"invalid request body: {fields}") from None


# The body is parsed by hand, after the API key is checked, so a caller without the key learns nothing
# about the body; openapi_extra keeps its schema in /docs.
@router.post(
    "/reports",
    response_model=CreditReportOut,
    responses={400: {}, 401: {}, 404: {}, 409: {}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ReportRequest.model_json_schema()}},
        }
    },
)
async def create_report(
    request: Request,
    authorization: str | None = Header(None),
    idempotency_key: str | None = Header(None),
) -> JSONResponse:
    body = await request.body()  # read first: from here on nothing awaits, so the request is atomic
    state = _state(request)
    entry: dict[str, Any] = {"received_at": _now(), "idempotency_key": idempotency_key, "applicant_id": None}
    state.log.append(entry)
    try:
        state.authenticate(authorization)
        parsed = _parse(body)
        entry["applicant_id"] = str(parsed.applicant_id)
        report, replayed = state.report(parsed, idempotency_key)
    except BureauError as exc:
        entry.update(status=exc.status, error_code=exc.body["error_code"], report_id=None, replayed=False)
        return exc.response()
    entry.update(status=200, error_code=None, report_id=report.report_id, replayed=replayed)
    log.info(
        "report %s applicant=%s score=%s replayed=%s", report.report_id, report.applicant_id, report.score, replayed
    )
    return JSONResponse(report.model_dump(mode="json"))


@control_router.get("/reports")
async def list_requests(request: Request) -> dict[str, list[dict[str, Any]]]:
    return {"requests": _state(request).log}


@control_router.get("/_control", response_model=BureauConfig)
async def get_control(request: Request) -> BureauConfig:
    return _state(request).config


@control_router.put("/_control", response_model=BureauConfig)
async def put_control(change: BureauConfigUpdate, request: Request) -> BureauConfig:
    config = _state(request).update(change)
    log.info("bureau config changed: %s", change.model_dump(exclude_unset=True, exclude={"bureau_api_key"}))
    return config

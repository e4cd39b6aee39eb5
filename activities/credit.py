"""The credit check: one report from the credit bureau (the sandbox's /bureau in development and tests).

Retries are Temporal's: connection errors, timeouts, 5xx and 429 raise plain exceptions (retryable); a
4xx is an answer that a retry would only repeat, so it is non-retryable:
  404 NO_FILE  -> ApplicationError(type="NoCreditFile")
  401, 403     -> ApplicationError(type="CreditBureauAccessDenied"): our own configuration is wrong (API key,
                  entitlement), not the applicant; the loan workflow waits, tells operators and tries again
  other 4xx    -> ApplicationError(type="CreditCheckRejected")
all with details [{"status", "error_code"}]. The Idempotency-Key `credit-<loan_id>` makes every retry of
one loan's check the same report at the bureau.
"""

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from models.credit import CreditCheckInput, CreditReport

NO_FILE = "NO_FILE"
ACCESS_DENIED = "CreditBureauAccessDenied"


def _error_code(response: httpx.Response) -> str | None:
    try:
        return response.json().get("error_code")
    except (ValueError, AttributeError):  # not JSON, or JSON but not an object
        return None


class CreditActivities:
    def __init__(self, base_url: str, api_key: str, timeout: float = 10, http: httpx.AsyncClient | None = None):
        self.base_url = base_url.rstrip("/")  # requests use absolute URLs, so a shared `http` client works too
        self.api_key = api_key
        self._owns_http = http is None
        self.http = http or httpx.AsyncClient(timeout=timeout)

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    @activity.defn
    async def check_credit(self, req: CreditCheckInput) -> CreditReport:
        response = await self.http.post(
            f"{self.base_url}/bureau/reports",
            json={
                "applicant_id": str(req.applicant_id),
                "full_name": req.full_name,
                "purpose": "loan",
                "amount": f"{req.amount:f}",
            },  # :f, never exponent notation such as 1.25E+4
            headers={"Authorization": f"Bearer {self.api_key}", "Idempotency-Key": f"credit-{req.loan_id}"},
        )
        if response.status_code >= 500 or response.status_code == 429:
            raise RuntimeError(f"the credit bureau answered {response.status_code}; retrying")
        if response.is_success:
            return CreditReport.model_validate(response.json())
        error_code = _error_code(response)
        details = {"status": response.status_code, "error_code": error_code}
        if response.status_code in (401, 403):
            raise ApplicationError(
                f"the credit bureau refused our credentials: {response.status_code} {error_code or ''}".rstrip()
                + " (check BUREAU_API_KEY and our access at the bureau)",
                details,
                type=ACCESS_DENIED,
                non_retryable=True,
            )
        if response.status_code == 404 and error_code == NO_FILE:
            raise ApplicationError(
                f"the credit bureau has no file for applicant {req.applicant_id}",
                details,
                type="NoCreditFile",
                non_retryable=True,
            )
        raise ApplicationError(
            f"the credit bureau rejected the check for loan {req.loan_id}: {response.status_code} {response.text[:500]}",
            details,
            type="CreditCheckRejected",
            non_retryable=True,
        )

"""A virus scanner: flags the EICAR anti-virus test file, as every real scanner does, and nothing else.

Scanner API (fault injection applies, see app.py):
  POST /scanner/scan  the bytes to scan as the body (any content type).
      200 {"clean": true, "signature": null} or {"clean": false, "signature": "Eicar-Test-Signature"}: the body
      holds the EICAR test string anywhere (clamd's name for it).
Production points DOCUMENT_SCANNER=clamd at ClamAV instead (core/scanning.py)."""

from fastapi import APIRouter, Request

router = APIRouter(prefix="/scanner", tags=["scanner"])

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_SIGNATURE = "Eicar-Test-Signature"


def verdict(data: bytes) -> dict:
    found = EICAR in data
    return {"clean": not found, "signature": EICAR_SIGNATURE if found else None}


@router.post("/scan")
async def scan(request: Request) -> dict:
    return verdict(await request.body())

"""TOTP MFA of the signed-in user: enrol (the secret shown once, as an otpauth URI and a QR code PNG), confirm with a
code (recovery codes shown once), disable with a code. Logic in domain/mfa.py."""

from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from api.deps import CipherDep, CurrentUser, EnrollingUser, SessionDep, SettingsDep
from api.fields import MfaCode
from domain import mfa

router = APIRouter(prefix="/auth/mfa", tags=["auth"])


class MfaEnrolmentOut(BaseModel):
    secret: str = Field(description="the TOTP secret (base32), shown this once")
    otpauth_uri: str = Field(examples=["otpauth://totp/Back%20office:dana%40riverside.example?secret=...&issuer=..."])
    qr_png_base64: str = Field(description="a QR code of otpauth_uri, PNG, base64")


class MfaCodeIn(BaseModel):
    code: MfaCode


class RecoveryCodesOut(BaseModel):
    recovery_codes: Annotated[
        list[str], Field(description="10 codes, each good once instead of a TOTP code; shown once")
    ]


@router.post(
    "/enroll",
    response_model=MfaEnrolmentOut,
    summary="Start MFA enrolment: a new TOTP secret (shown once); an access token or an enrolment token",
)
async def enroll(session: SessionDep, settings: SettingsDep, cipher: CipherDep, user: EnrollingUser):
    """Add the secret to an authenticator app (scan the QR code or paste the URI), then confirm with a code. Staff
    whose organization requires MFA use the enrolment token their login answered with."""
    enrolment = await mfa.enrol(session, settings, cipher, user)
    await session.commit()
    return MfaEnrolmentOut(
        secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_png_base64=enrolment.qr_png_base64
    )


@router.post("/confirm", response_model=RecoveryCodesOut, summary="Turn MFA on with a code of the new secret")
async def confirm(body: MfaCodeIn, session: SessionDep, settings: SettingsDep, cipher: CipherDep, user: EnrollingUser):
    codes = await mfa.confirm(session, settings, cipher, user, body.code.strip())
    await session.commit()
    return RecoveryCodesOut(recovery_codes=codes)


@router.post(
    "/disable", status_code=204, response_class=Response, summary="Turn MFA off with a code (TOTP or recovery)"
)
async def disable(body: MfaCodeIn, session: SessionDep, settings: SettingsDep, cipher: CipherDep, user: CurrentUser):
    await mfa.disable(session, settings, cipher, user, body.code.strip())
    await session.commit()
    return Response(status_code=204)

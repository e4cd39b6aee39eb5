"""With ENVIRONMENT=production the API and the worker refuse to start while any secret has its development default;
development and tests start with the defaults."""

import base64
import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from api.main import create_app
from core.config import (
    DEV_FERNET_KEY,
    DEV_FILE_KEY,
    InsecureSettings,
    Settings,
    check_production_secrets,
    development_secrets,
)
from devstack.processes import ROOT

ALL_DEFAULTS = [
    "JWT_SECRET",
    "ACCOUNT_NUMBER_KEYS",
    "FINGERPRINT_KEY",
    "FILE_ENCRYPTION_KEYS",
    "LINKING_SECRET",
    "ODFI_API_KEY",
    "BANK_WEBHOOK_SECRET",
    "BUREAU_API_KEY",
    "IDENTITY_API_KEY",
    "FX_API_KEY",
    "GATEWAY_SECRET_KEY",
    "METRICS_TOKEN",  # no default at all: unset is refused
]


def real_secrets() -> dict:
    return dict(
        jwt_secret=os.urandom(32).hex(),
        account_number_keys=[Fernet.generate_key().decode()],
        file_encryption_keys=[base64.b64encode(os.urandom(32)).decode()],
        linking_secret=os.urandom(8).hex(),
        odfi_api_key=os.urandom(8).hex(),
        bank_webhook_secret=os.urandom(16).hex(),
        bureau_api_key=os.urandom(8).hex(),
        identity_api_key=os.urandom(8).hex(),
        fx_api_key=os.urandom(8).hex(),
        gateway_secret_key=os.urandom(16).hex(),
        metrics_token=os.urandom(16).hex(),
    )


def test_production_refuses_every_development_default_secret_and_names_each():
    with pytest.raises(InsecureSettings) as refused:
        check_production_secrets(Settings(environment="production"))
    assert refused.value.names == ALL_DEFAULTS
    for name in ALL_DEFAULTS:
        assert name in str(refused.value)


def test_production_starts_once_every_secret_is_its_own():
    check_production_secrets(Settings(environment="production", **real_secrets()))


def test_a_development_key_left_anywhere_in_a_key_list_is_refused_and_a_secret_set_to_another_default_too():
    settings = Settings(
        environment="Production",
        **{
            **real_secrets(),
            "account_number_keys": [Fernet.generate_key().decode(), DEV_FERNET_KEY],
            "file_encryption_keys": [base64.b64encode(os.urandom(32)).decode(), DEV_FILE_KEY],
            "bank_webhook_secret": "sandbox-odfi-key",
            "fingerprint_key": SecretStr(DEV_FERNET_KEY),
        },
    )
    assert development_secrets(settings) == [
        "ACCOUNT_NUMBER_KEYS",
        "FINGERPRINT_KEY",
        "FILE_ENCRYPTION_KEYS",
        "BANK_WEBHOOK_SECRET",
    ]
    with pytest.raises(InsecureSettings):
        check_production_secrets(settings)


def test_development_and_tests_start_with_the_defaults():
    for environment in ("development", "test"):
        check_production_secrets(Settings(environment=environment))
        create_app(Settings(environment=environment))


def test_the_api_app_refuses_to_start_in_production_with_default_secrets():
    with pytest.raises(InsecureSettings, match="development defaults: JWT_SECRET, ACCOUNT_NUMBER_KEYS"):
        create_app(Settings(environment="production"))
    create_app(Settings(environment="production", **real_secrets()))


def test_the_worker_refuses_to_start_in_production_with_default_secrets():
    env = {k: v for k, v in os.environ.items() if k not in set(ALL_DEFAULTS)}
    # Nothing listens there: the worker must stop before it tries to reach Temporal or Postgres.
    env.update(
        ENVIRONMENT="production",
        TEMPORAL_ADDRESS="127.0.0.1:9",
        DATABASE_URL="postgresql://nobody@127.0.0.1:9/x",
        JWT_SECRET=os.urandom(32).hex(),
    )
    result = subprocess.run(
        [sys.executable, "worker.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "worker not started" in result.stderr and "JWT_SECRET" not in result.stderr
    for name in ALL_DEFAULTS[1:]:
        assert name in result.stderr, result.stderr[-2000:]

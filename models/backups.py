"""Inputs and results of the backup and retention workflows."""

from datetime import datetime

from pydantic import BaseModel, Field


class BackupInput(BaseModel):
    """BackupWorkflow: the Schedule passes only the time zone; the dump is named for the scheduled start."""

    timezone: str = "America/New_York"


class BackupRequest(BaseModel):
    at: datetime  # names the dump: a retry of the same run overwrites the same file


class BackupResult(BaseModel):
    name: str
    size_bytes: int
    sha256: str
    toc_entries: int
    pruned: list[str] = Field(default_factory=list)


class PruneRequest(BaseModel):
    now: datetime


class RetentionInput(BaseModel):
    """RetentionWorkflow: the Schedule passes only the time zone; ages are measured from the scheduled start."""

    timezone: str = "America/New_York"


class RetentionRequest(BaseModel):
    now: datetime
    run_id: str  # the audit row of the run is written once per id


class RetentionResult(BaseModel):
    counts: dict[str, int]  # rule name -> rows purged or anonymized

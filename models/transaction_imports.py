"""Inputs and outcomes of the transaction import workflow (`import-<id>`) and its activities."""

import uuid

from pydantic import BaseModel


class ImportInput(BaseModel):
    import_id: uuid.UUID
    offset: int = 0  # where this run of the workflow starts (continue-as-new carries it on)
    line_no: int = 1
    columns: list[str] | None = None  # the header's, once read


class ImportChunkInput(BaseModel):
    import_id: uuid.UUID
    offset: int
    line_no: int
    columns: list[str] | None = None


class ImportProgress(BaseModel):
    """The import's counts as committed so far, and what it is doing."""

    status: str = "running"  # running, categorising, completed, failed
    rows_read: int = 0
    rows_loaded: int = 0
    rows_duplicate: int = 0
    rows_rejected: int = 0
    error: str | None = None


class ImportChunkOutcome(ImportProgress):
    next_offset: int = 0
    next_line: int = 1
    columns: list[str] | None = None
    done: bool = False


class ImportRef(BaseModel):
    import_id: uuid.UUID


class ImportFailure(BaseModel):
    import_id: uuid.UUID
    error: str


class LinkedImportInput(BaseModel):
    import_id: uuid.UUID
    cursor: str | None = None  # the provider's cursor this run of the workflow starts from


class SyncPage(BaseModel):
    import_id: uuid.UUID
    cursor: str | None  # where this page starts: the import row's cursor when it was asked for


class SyncPageOutcome(ImportProgress):
    next_cursor: str | None = None
    has_more: bool = False

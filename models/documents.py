"""Documents and their versions: the metadata in Postgres, the bytes encrypted in object storage (core/storage).

A document belongs to one entity (a user, a loan; `entity_type` leaves room for others) of one organization. Each
upload adds a version, numbered from 1; a version's id is its upload's id, so the activity that stores it can run
again without writing it twice."""

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import created_at, uuid_pk


class DocumentKind(StrEnum):
    id_document = "id_document"
    proof_of_address = "proof_of_address"
    proof_of_income = "proof_of_income"
    bank_statement = "bank_statement"
    loan_agreement = "loan_agreement"
    other = "other"


class OwnerType(StrEnum):
    user = "user"
    loan = "loan"


class Sensitivity(StrEnum):
    normal = "normal"
    sensitive = "sensitive"  # every download is audited


# What a kind is unless the uploader says otherwise: identity and money papers are sensitive.
DEFAULT_SENSITIVITY = dict.fromkeys(DocumentKind, Sensitivity.sensitive) | {DocumentKind.other: Sensitivity.normal}


class Document(SQLModel, table=True):
    __tablename__ = "documents"
    __table_args__ = (
        CheckConstraint("entity_type IN ('user','loan')", name="documents_entity_type_valid"),
        CheckConstraint("sensitivity IN ('normal','sensitive')", name="documents_sensitivity_valid"),
    )
    id: uuid.UUID = uuid_pk()
    org_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    entity_type: str = Field(max_length=32)
    entity_id: uuid.UUID = Field(index=True)
    kind: str = Field(max_length=40)
    sensitivity: str = Field(max_length=16)
    title: str = Field(max_length=200)
    latest_version: int = Field(default=1)
    created_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = created_at()


class DocumentVersion(SQLModel, table=True):
    __tablename__ = "document_versions"
    __table_args__ = (UniqueConstraint("document_id", "number", name="document_versions_number_once"),)
    id: uuid.UUID = uuid_pk()  # the upload's id
    document_id: uuid.UUID = Field(sa_column=Column(ForeignKey("documents.id"), nullable=False, index=True))
    number: int
    storage_key: str = Field(max_length=300)
    size_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    sha256: str = Field(max_length=64)
    content_type: str = Field(max_length=100)
    filename: str = Field(max_length=255)
    key_id: str = Field(max_length=32)  # the FILE_ENCRYPTION_KEYS key that sealed it
    created_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = created_at()


class UploadInput(BaseModel):
    """Input of "DocumentUploadWorkflow" (id `document-upload-<upload_id>`): the bytes wait, sealed, at the staging key
    until the scan passes; a new document when `new_document` (then its id is the upload's), else a new version."""

    upload_id: uuid.UUID
    document_id: uuid.UUID
    new_document: bool
    org_id: uuid.UUID
    entity_type: str
    entity_id: uuid.UUID
    kind: str
    sensitivity: str
    title: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    key_id: str
    created_by: uuid.UUID | None


class ScanVerdict(BaseModel):
    clean: bool
    signature: str | None = None  # what the scanner found


class UploadResult(BaseModel):
    stored: bool
    document_id: uuid.UUID
    version: int | None = None
    signature: str | None = None  # refused: what the scanner found

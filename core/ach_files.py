"""NACHA files at rest: their text (account numbers, names) is stored only encrypted, bound to its row. Whatever
needs the text (the upload to the ODFI, a download by an authorized user) opens it here."""

import uuid

from core.crypto import FileCipher
from models.ach import AchFile


def context(file_id: uuid.UUID) -> str:
    """Authenticated with the ciphertext (migration 0013 uses the same string): a file decrypts only on its own row."""
    return f"ach_file:{file_id}"


def seal(cipher: FileCipher, file_id: uuid.UUID, content: str) -> dict:
    """The columns that store `content` for the file `file_id`."""
    key_id, sealed = cipher.encrypt(content.encode("ascii"), context(file_id))
    return {"content_encrypted": sealed, "content_key_id": key_id}


def content(cipher: FileCipher, ach_file: AchFile) -> str:
    """The file's NACHA text. Raises ValueError when no configured key opens it."""
    return cipher.decrypt(ach_file.content_key_id, ach_file.content_encrypted, context(ach_file.id)).decode("ascii")

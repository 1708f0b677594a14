"""User and token models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from pigeon_api.schemas.common import EmailAddress, Flag, RequestModel
from pigeon_common.auth import MIN_PASSWORD_LENGTH
from pigeon_common.domain.access import Role

NewPassword = Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=1024)]


class TokenRequest(RequestModel):
    email: EmailAddress
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class TokenPublic(BaseModel):
    """`token` reads and writes (null when asked with the read-only token);
    `read_only_token` only reads: every write answers 403."""

    token: str | None
    read_only_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret


class UserCreate(RequestModel):
    email: EmailAddress
    password: NewPassword
    role: Role = Role.MEMBER
    is_admin: Flag = False  # the same as role "admin" (kept for older clients)


class RoleChange(RequestModel):
    role: Role


class PasswordReset(RequestModel):
    password: NewPassword


class PasswordChange(RequestModel):
    current_password: Annotated[str, Field(min_length=1, max_length=1024)]
    new_password: NewPassword


class UserPublic(BaseModel):
    id: uuid.UUID
    email: str
    role: Role
    is_admin: bool
    created_at: datetime

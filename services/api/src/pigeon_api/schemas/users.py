"""User and token models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from pigeon_api.schemas.common import EmailAddress, Flag, RequestModel
from pigeon_common.auth import MIN_PASSWORD_LENGTH

NewPassword = Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=1024)]


class TokenRequest(RequestModel):
    email: EmailAddress
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class TokenPublic(BaseModel):
    token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret


class UserCreate(RequestModel):
    email: EmailAddress
    password: NewPassword
    is_admin: Flag = False


class PasswordChange(RequestModel):
    current_password: Annotated[str, Field(min_length=1, max_length=1024)]
    new_password: NewPassword


class UserPublic(BaseModel):
    id: uuid.UUID
    email: str
    is_admin: bool
    created_at: datetime

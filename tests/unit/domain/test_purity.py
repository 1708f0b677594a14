"""The domain is pure: it imports no server client or web framework."""

from __future__ import annotations

import ast
from pathlib import Path

import pigeon_common.domain

FORBIDDEN = ("nats", "asyncpg", "aiosmtplib", "fastapi", "starlette", "httpx", "socket")


def test_domain_imports_no_io() -> None:
    folder = Path(pigeon_common.domain.__file__).parent
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert not name.startswith(FORBIDDEN), f"{path.name} imports {name}"

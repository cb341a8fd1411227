"""Tokens hashed at rest (principals and scopes live in sous_common.trust)."""

from __future__ import annotations

import hashlib


def hash_token(token: str) -> str:
    """Return the stored form of a bearer token (`sha256:<hex>`); tokens are never stored."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()

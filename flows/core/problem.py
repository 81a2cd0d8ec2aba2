"""The problem record every dataset row becomes, and the text helpers that identify problems."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from flows.core.errors import UserError


class DataError(UserError, ValueError):
    """A dataset could not be read; the message names the file and line or the missing source."""


@dataclass(frozen=True)
class Problem:
    id: str
    task: str
    split: str
    question: str
    solution: str | None
    answer: str
    subject: str | None = None
    level: int | None = None


def content_id(task: str, question: str) -> str:
    """A stable id for a problem without one of its own."""
    return f"{task}/" + hashlib.sha256(question.strip().encode()).hexdigest()[:16]


def normalize_text(text: str) -> str:
    """Lower-case, collapse whitespace and strip punctuation: for duplicate and leakage checks."""
    kept = "".join(c.lower() if c.isalnum() else " " for c in text)
    return " ".join(kept.split())

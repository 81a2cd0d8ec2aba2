"""The result type of every check: a small immutable record of what was decided and how."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """Outcome of comparing one predicted answer with one gold answer.

    ``method`` names the check that decided (``exact``, ``numeric``, ``structure``, ``text``,
    ``choice``, ``base``, ``polynomial``: an exact identity of rational functions decided
    in-process, ``symbolic``: sympy in a worker), or why nothing could be decided
    (``no_answer``, ``rejected``, ``error``). ``extracted`` is the answer taken from the prediction, ``error``
    describes a failure (``timeout``, ``parse_error: ...``, ...). An error is never correct.
    ``extraction`` says where the answer came from: ``bare`` (the prediction was an answer, not
    a response), ``boxed``, ``boxes`` (several boxes together), ``answer_phrase``, ``hashes``, or in flexible mode only
    ``closing_statement`` and ``last_number``; None when no answer was taken.
    """

    correct: bool
    method: str
    extracted: str | None = None
    error: str | None = None
    extraction: str | None = None

    def __post_init__(self) -> None:
        if self.correct and self.error is not None:
            raise ValueError("a Verdict with an error cannot be correct")

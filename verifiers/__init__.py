"""Math answer checking: strings in, a :class:`Verdict` out.

Public API::

    verify(gold, pred, task="math", *, mode="strict", timeout_s=5.0) -> Verdict
    verify_many(pairs, *, task="math", mode="strict", workers=None, timeout_s=5.0) -> list[Verdict]
    extract_answer(response, task="math", mode="strict") -> str | None
    check_steps(rationale, task="gsm8k") -> StepReport   (arithmetic claims of a rationale, verifiers.steps)
    Verdict, VERSION

Safety: model text is never evaluated. Cheap checks (canonical exact match, exact rationals
from strictly validated numeric strings, exact rational-function identities on a strict subset
of LaTeX, ``verifiers.poly``) run in the calling thread; anything needing sympy
runs in a worker process (``verifiers.pool``) with a hard deadline, the worker being killed
and replaced when it overruns. Inputs are bounded in length and nesting; control characters
and non-ASCII digits are rejected, other text is NFKC-normalised (``verifiers.sanitize``).
Nothing here imports the rest of the project. The rules, and every rule for an ambiguous
shape, are written down in docs/verifiers.md.
"""
from verifiers.extract import extract_answer
from verifiers.grader import DEFAULT_TIMEOUT_S, verify, verify_many
from verifiers.steps import Claim, StepReport, check_steps
from verifiers.verdict import Verdict

VERSION = "1.2.0"

__all__ = ["DEFAULT_TIMEOUT_S", "VERSION", "Claim", "StepReport", "Verdict", "check_steps", "extract_answer",
           "verify", "verify_many"]

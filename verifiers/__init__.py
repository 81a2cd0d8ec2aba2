"""Answer checking: strings in, a :class:`Verdict` out, under an answer format (never a dataset name).

Public API (``fmt``: a :class:`Format` or one of ``FORMATS``: number, math, choice, label, exact)::

    verify(gold, pred, fmt="math", *, mode="strict", timeout_s=5.0, question=None) -> Verdict
    verify_many(pairs, fmt="math", *, mode="strict", workers=None, timeout_s=5.0, questions=None) -> list[Verdict]
    extract_answer(response, fmt="math", mode="strict", *, question=None) -> str | None
    parse_gold(gold, fmt, question=None) -> str | None   (the gold answer as the verifier reads it)
    check_steps(rationale, fmt="number") -> StepReport   (arithmetic claims of a rationale, verifiers.steps)
    instruction(fmt), answer_line(answer, fmt)            (how a response in this format must end)
    Format, FORMATS, Verdict, VERSION


Safety: model text is never evaluated. Cheap checks (canonical exact match, exact rationals
from strictly validated numeric strings, exact rational-function identities on a strict subset
of LaTeX, ``verifiers.poly``) run in the calling thread; anything needing sympy
runs in a worker process (``verifiers.pool``) with a hard deadline, the worker being killed
and replaced when it overruns. Inputs are bounded in length and nesting; control characters
and non-ASCII digits are rejected, other text is NFKC-normalised (``verifiers.sanitize``).
Nothing here imports the rest of the project. The rules, and every rule for an ambiguous
shape, are written down in docs/verifiers.md.
"""
from verifiers.formats import (ARITHMETIC, FORMATS, Format, answer_line, check_steps, extract_answer, instruction,
                               parse_gold, verify, verify_many)
from verifiers.grader import DEFAULT_TIMEOUT_S
from verifiers.steps import Claim, StepReport
from verifiers.verdict import Verdict

VERSION = "1.2.0"

__all__ = ["ARITHMETIC", "DEFAULT_TIMEOUT_S", "FORMATS", "VERSION", "Claim", "Format", "StepReport", "Verdict",
           "answer_line", "check_steps", "extract_answer", "instruction", "parse_gold", "verify", "verify_many"]

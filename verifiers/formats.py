"""Answer formats: what a gold answer is and how a response must end, independent of any dataset.

A :class:`Format` names one of :data:`FORMATS` with its options:

* ``number``: a numeric answer (thousands separators, units, currency, "The answer is N"; ``51.0`` equals ``51``);
* ``math``: a LaTeX answer (``\\boxed{}``, exact rationals, sympy in a worker under a deadline);
* ``choice``: an option letter ``(A)``..``(Z)``; the option's text counts when the question lists the options;
* ``label``: one word of a closed set (``labels``), case-insensitive; the committed one wins;
* ``exact``: a normalised string (``ignore_case``, ``ignore_punctuation``, ``ignore_whitespace``,
  ``regexes_to_ignore``), e.g. word lists and bracket sequences.

Every format has strict and flexible extraction and a default :func:`instruction` telling a model how to end
its answer. ``number`` and ``math`` go through :mod:`verifiers.grader`; the others through
:mod:`verifiers.textual`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Iterable

from verifiers import grader, textual
from verifiers.extract import MODES
from verifiers.extract import extract_answer as _extract_math
from verifiers.normalize import normalize
from verifiers.numeric import parse_number
from verifiers.steps import StepReport
from verifiers.steps import check_steps as _check_steps
from verifiers.verdict import Verdict

FORMATS = ("number", "math", "choice", "label", "exact")
ARITHMETIC = ("number", "math")  # formats whose rationales have arithmetic steps to check
MAX_LABELS = 100
MAX_REGEXES = 20


@dataclass(frozen=True)
class Format:
    """An answer format and its options (hashable and picklable: it travels to worker processes)."""

    name: str
    labels: tuple[str, ...] = ()            # label: the closed set of answers
    ignore_case: bool = True                # exact
    ignore_punctuation: bool = False        # exact
    ignore_whitespace: bool = False         # exact: drop all whitespace (else runs collapse to one space)
    regexes_to_ignore: tuple[str, ...] = ()  # exact: removed from both answers before comparing

    def __post_init__(self) -> None:
        if self.name not in FORMATS:
            raise ValueError(f"unknown answer format {self.name!r}; expected one of {FORMATS}")
        if self.labels and self.name != "label":
            raise ValueError(f"'labels' applies to the label format, not {self.name!r}")
        if self.name == "label":
            if not self.labels:
                raise ValueError("the label format needs its labels (a list of words)")
            if len(self.labels) > MAX_LABELS or len({x.lower() for x in self.labels}) != len(self.labels):
                raise ValueError(f"labels must be at most {MAX_LABELS} distinct words (case-insensitive): "
                                 f"{list(self.labels)[:10]}")
            bad = [x for x in self.labels if not isinstance(x, str) or not x.strip() or len(x) > 100]
            if bad:
                raise ValueError(f"labels must be non-empty strings of at most 100 characters: {bad[:3]}")
        if self.name != "exact" and (self.ignore_punctuation or self.ignore_whitespace or self.regexes_to_ignore
                                     or not self.ignore_case):
            raise ValueError("ignore_case, ignore_punctuation, ignore_whitespace and regexes_to_ignore apply to "
                             f"the exact format, not {self.name!r}")
        if len(self.regexes_to_ignore) > MAX_REGEXES:
            raise ValueError(f"at most {MAX_REGEXES} regexes_to_ignore")
        for pattern in self.regexes_to_ignore:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"regexes_to_ignore: {pattern!r} is not a regular expression ({exc})") from None

    @classmethod
    def of(cls, fmt: "Format | str") -> "Format":
        """``fmt`` as a Format: a name takes the default options."""
        if isinstance(fmt, Format):
            return fmt
        if not isinstance(fmt, str):
            raise TypeError(f"expected a format name or Format, got {type(fmt).__name__}")
        return cls(fmt)

    def options(self) -> dict:
        """The options that differ from the defaults, for provenance and messages."""
        return {f.name: list(v) if isinstance(v, tuple) else v for f in fields(self)[1:]
                if (v := getattr(self, f.name)) != f.default}


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")


def verify(gold: str, pred: str, fmt: Format | str = "math", *, mode: str = "strict",
           timeout_s: float = grader.DEFAULT_TIMEOUT_S, question: str | None = None) -> Verdict:
    """Judge ``pred`` (a bare answer or a whole response) against ``gold`` under the answer format ``fmt``.

    ``mode`` (``strict``/``flexible``) controls extraction from whole responses; ``question`` lets the choice
    format read the options a question lists. Never raises for bad answer text; raises ValueError/TypeError for bad arguments.
    """
    f = Format.of(fmt)
    check_mode(mode)
    if f.name in ARITHMETIC:
        return grader.verify(gold, pred, f.name, mode=mode, timeout_s=timeout_s)
    return textual.verify(gold, pred, f, mode, question)


def verify_many(pairs: Iterable[tuple[str, str]], fmt: Format | str = "math", *, mode: str = "strict",
                workers: int | None = None, timeout_s: float = grader.DEFAULT_TIMEOUT_S,
                questions: Iterable[str | None] | None = None) -> list[Verdict]:
    """:func:`verify` over (gold, pred) pairs, in input order; ``questions`` pairs up with them (choice)."""
    f = Format.of(fmt)
    check_mode(mode)
    if f.name in ARITHMETIC:
        return grader.verify_many(pairs, task=f.name, mode=mode, workers=workers, timeout_s=timeout_s)
    pairs = list(pairs)
    qs = list(questions) if questions is not None else [None] * len(pairs)
    if len(qs) != len(pairs):
        raise ValueError(f"{len(qs)} questions for {len(pairs)} pairs")
    return [textual.verify(g, p, f, mode, q) for (g, p), q in zip(pairs, qs)]


def extract_answer(response: str, fmt: Format | str = "math", mode: str = "strict", *,
                   question: str | None = None) -> str | None:
    """The final answer ``response`` commits to under ``fmt``, or None."""
    f = Format.of(fmt)
    check_mode(mode)
    if f.name in ARITHMETIC:
        return _extract_math(response, f.name, mode)
    return textual.extract(response, f, mode, question)


def parse_gold(gold: str, fmt: Format | str, question: str | None = None) -> str | None:
    """The gold answer as the verifier reads it (None when it does not parse under ``fmt``)."""
    f = Format.of(fmt)
    if f.name in ARITHMETIC:
        verdict = grader.verify(gold, gold, f.name)
        if not verdict.correct or f.name == "math":
            return verdict.extracted if verdict.correct else None
        number = normalize(verdict.extracted or "", "number").removesuffix("\\%")
        return verdict.extracted if parse_number(number) is not None else None
    return textual.parse_gold(gold, f, question)


def check_steps(rationale: str, fmt: Format | str = "number") -> StepReport:
    """The arithmetic claims of ``rationale`` (:mod:`verifiers.steps`); an empty report for formats without
    arithmetic (choice, label, exact)."""
    f = Format.of(fmt)
    if f.name not in ARITHMETIC:
        return StepReport((), 0, False)
    return _check_steps(rationale, f.name)


def instruction(fmt: Format | str) -> str:
    """The default system instruction: solve step by step and end the answer in the form this format reads."""
    f = Format.of(fmt)
    if f.name == "label":
        return (f'Solve the problem step by step. End with a line of the form "The answer is X", where X is one '
                f'of: {", ".join(f.labels)}.')
    return {
        "number": 'Solve the problem step by step. End with a line of the form "The answer is N".',
        "math": "Solve the problem step by step. Put the final answer in \\boxed{}.",
        "choice": 'Solve the problem step by step. End with a line of the form "The answer is (X)", where X is '
                  'the letter of the correct option.',
        "exact": 'Solve the problem step by step. End with a line of the form "The answer is X", where X is the '
                 'final answer alone.',
    }[f.name]


def answer_line(answer: str, fmt: Format | str) -> str:
    """How a rationale in this format's prompts ends, for ``answer``."""
    f = Format.of(fmt)
    if f.name == "math":
        return f"The final answer is $\\boxed{{{answer}}}$."
    if f.name == "choice":
        return f"The answer is ({textual.letter(answer) or answer})"
    return f"The answer is {answer}"

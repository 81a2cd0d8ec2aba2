r"""Step-level checks of a rationale: ``check_steps(rationale, task) -> StepReport``.

A *claim* is an equality whose left side computes something: ``3 * 12 = 36``, ``16 - 3 - 4 = 9 eggs``,
``$20 * 0.25 = $5``, ``50% of 80 = 40``, ``2^{10} = 1024``, ``\frac{12}{18} = \frac{2}{3}``. Chains
``a = b = c`` give one claim per ``=``. Both sides are read from the tokens around the ``=``
(:mod:`verifiers.arith`): numbers (thousands separators, ``%``, currency), operators (``x``, ``×`` and
``times`` as products and ``of`` after a percent or fraction in GSM8K text), brackets, ``\frac``, and unit
words between a number and an operator (``3 apples + 2 apples``). Both sides are computed exactly with
fractions; the left side must contain an operator (``1 hour = 60 minutes`` and ``12 = 3 * 4`` are
conversions or restatements, not checked).

Anything symbolic or ambiguous is *not checked*, never *wrong*: a variable or command touching the
expression (``2x + 3 = 11``, ``\sqrt{16} = 4``, ``f(2) = 5``), a mixed number (``3 1/2``), an
expression cut off by prose (``x - 3 = 5``, ``= 40 + tip``), a non-integer or oversized power, a
division by zero, a factorial or ``*`` in MATH text (problems define ``a * b`` as they like).

When is a claimed number right? Let ``v`` be the exact value of the left side and ``c`` the number
written on the right, with ``d`` decimals:

* exact: ``v == c``;
* rounded (``d >= 1`` only): ``|v - c| <= 0.5 * 10**-d``, or ``c`` is ``v`` truncated to ``d``
  decimals (``2/3 = 0.66``);
* approximate (``≈``, ``~``, ``\approx``, "about", "approximately", ...): an integer with ``k``
  trailing zeros is right if ``|v - c| <= 0.5 * 10**k`` (``10/3 ≈ 3``, ``1000/7 ≈ 140``);
* in MATH text an integer may state a non-integer ``v`` rounded (problems ask for "the nearest
  dollar"): right if ``|v - c| <= 0.5``; the same for a final answer ``= \boxed{c}``;
* a percent on the right (``20/80 = 25%`` or ``0.25 * 100 = 25%``) may state ``v`` as ``c/100`` or ``c``;
* a right side that is itself an expression is right if it has the same value, or if it starts with
  a number that states ``v`` and continues the computation (``2 * 3 = 6 + 4 = 10``).

An integer claim without an approximation mark gets no tolerance (``7/2 = 3`` is wrong).

Bounds: at most :data:`MAX_CHARS` characters and :data:`MAX_CLAIMS` equalities are read (the report
says when it stopped early), numbers have at most 40 digits, operands at most 64 tokens, powers at most
20,000 bits. Everything is linear-time pure Python, so no worker process or deadline is needed.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from verifiers.arith import (BOUND, BOXED, CMD, CUR, EQ, FRAC, LP, NUM, OP, PUNCT, RP, WORD, NotArithmetic, Tok,
                             evaluate, has_operator, tokenize)

MAX_CHARS = 20_000
MAX_CLAIMS = 400
TASKS = ("number", "math")
UNIT = "unit"
SYM = "sym"

_RUN = {NUM, OP, LP, RP, FRAC, CUR, UNIT}
_APPROX_WORDS = {"about", "approximately", "approx", "around", "roughly", "nearly", "almost", "circa"}
_WORD_OPS = {"x", "times", "of", "plus", "minus"}
_NOT_UNITS = {"st", "nd", "rd", "th", "am", "pm", "k", "m"}
_CONNECTORS = {"per", "of", "each"}  # inside a unit, never first: "5 hours per day", "12 bags of flour"
_STOP_WORDS = {"and", "or", "to", "is", "are", "was", "were", "so", "then", "the", "a", "an", "for", "by", "from",
               "plus", "minus", "x", "with", "in", "on", "at", "than", "as", "which", "that", "this", "it", "be",
               "has", "have", "had", "equals", "gives", "makes"}
_SAFE_PUNCT = set(",.:;?\"'“”‘’")


@dataclass(frozen=True)
class Claim:
    """One checked equality: its span in the rationale, both sides as written, their exact values,
    whether the claim holds and the rule that decided (``exact``, ``equal``, ``rounded``, ``truncated``,
    ``approximate``, ``percent``, ``running``, or ``wrong``)."""

    start: int
    end: int
    expression: str
    claimed: str
    value: Fraction
    claimed_value: Fraction
    ok: bool
    rule: str

    def describe(self) -> str:
        verdict = "ok" if self.ok else f"wrong: {self.expression} is {format_value(self.value)}"
        return f"chars {self.start}-{self.end} '{self.expression} = {self.claimed}' ({verdict})"


@dataclass(frozen=True)
class StepReport:
    """The claims of one rationale, in text order. ``equalities`` counts every ``=`` read, checked
    or not; ``truncated`` says the text or the number of equalities went past the bounds."""

    claims: tuple[Claim, ...]
    equalities: int
    truncated: bool = False

    @property
    def checked(self) -> int:
        return len(self.claims)

    @property
    def wrong(self) -> int:
        return sum(not c.ok for c in self.claims)

    @property
    def wrong_claims(self) -> tuple[Claim, ...]:
        return tuple(c for c in self.claims if not c.ok)

    def describe(self) -> str:
        head = f"{self.wrong} wrong of {self.checked} checked ({self.equalities} equalities)"
        return "; ".join([head] + [c.describe() for c in self.wrong_claims])


def format_value(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{value} (~{float(value):.6g})"


def check_steps(rationale: str, task: str = "number") -> StepReport:
    """Check every arithmetic claim of ``rationale`` (see the module docstring for the rules)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r} for check_steps; expected one of {TASKS}")
    text = rationale[:MAX_CHARS]
    truncated = len(rationale) > MAX_CHARS
    if "=" not in text and "≈" not in text and "≃" not in text and "\\approx" not in text and "\\simeq" not in text:
        return StepReport((), 0, truncated)
    tokens = tokenize(text)
    _classify(tokens, task)
    claims: list[Claim] = []
    equalities = 0
    for i, tok in enumerate(tokens):
        if tok.kind != EQ or _is_comparison(tokens, i):
            continue
        equalities += 1
        if equalities > MAX_CLAIMS:
            truncated = True
            break
        claim = _claim(text, tokens, i, task)
        if claim is not None:
            claims.append(claim)
    return StepReport(tuple(claims), min(equalities, MAX_CLAIMS), truncated)


def _is_comparison(tokens: list[Tok], i: int) -> bool:
    prev = tokens[i - 1] if i else None
    return prev is not None and not tokens[i].gap and prev.kind == PUNCT and prev.text in "<>!:"


def _classify(tokens: list[Tok], task: str) -> None:
    """Mark word operators, unit words and numbers glued to letters (``2x``, ``5kg``, ``3rd``)."""
    for i, t in enumerate(tokens):
        if t.kind == WORD and task == "number" and t.text.lower() in _WORD_OPS and _word_op(tokens, i):
            t.kind = OP
    for i, t in enumerate(tokens):
        if t.kind == OP and task == "math" and t.text in ("*", "\\ast"):
            t.kind = SYM  # MATH problems define their own operations with * ("a * b = 2a + b")
        if t.op == "^" and task == "math" and i + 1 < len(tokens) and tokens[i + 1].kind == NUM and \
                len(tokens[i + 1].text) > 1:
            t.kind = SYM  # LaTeX reads 3^25^2 as 3^2 5^2: an unbraced exponent of several digits is ambiguous
        if t.kind == WORD and i and tokens[i - 1].kind == NUM and not t.gap and _glued_unit(t.text, task):
            t.kind = UNIT  # "5kg", "220km": a unit written without a space
    for i, t in enumerate(tokens):
        if t.kind == NUM and _glued(tokens, i):
            t.kind = SYM
    for i in range(1, len(tokens) if task == "number" else 0):  # MATH text writes units with \text
        end = tokens[i - 1].kind in (NUM, CUR, UNIT) and _unit_end(tokens, i)
        if end:
            for k in range(i, end):
                tokens[k].kind = UNIT


def _glued_unit(word: str, task: str) -> bool:
    """A word written right after a number that is a unit: any longer word in GSM8K text (``220km``,
    ``128miles``) but ordinals, clock times and ``x...``; never in MATH text (``2g`` is a product there)."""
    if task == "math":
        return False
    return (len(word) > 1 or word == "g") and word.lower() not in _NOT_UNITS and not word.startswith("x")


def _glued(tokens: list[Tok], i: int) -> bool:
    before = tokens[i - 1] if i else None
    after = tokens[i + 1] if i + 1 < len(tokens) else None
    return ((before is not None and not tokens[i].gap and before.kind in (WORD, CMD, SYM))
            or (after is not None and not after.gap and after.kind in (WORD, CMD, SYM)))


def _word_op(tokens: list[Tok], i: int) -> bool:
    word = tokens[i].text.lower()
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    if nxt is None or nxt.kind not in (NUM, LP, CUR):
        return False
    j = i - 1
    while j >= 0 and i - j <= 4 and (tokens[j].kind == WORD and tokens[j].text.lower() not in _STOP_WORDS
                                     or tokens[j].text == "/" and not tokens[j].gap):
        j -= 1
    if j < 0 or tokens[j].kind not in (NUM, RP, CUR):
        return False
    if word == "of":  # "50% of 80", "1/4 of 20", "(1/4) of 20"
        prev = tokens[i - 1]
        return prev.kind == RP or (prev.kind == NUM and (prev.percent or (i >= 3 and tokens[i - 2].op == "/")))
    if word in ("x", "times"):
        return True
    return j == i - 1  # plus / minus only right between numbers


def _unit_end(tokens: list[Tok], i: int) -> int:
    """The end of the unit words starting at ``i`` right after a number (``3 apples + ...``,
    ``6 pups/mouse - ...``, ``$5/hour * 8 hours``), or 0. Up to three words, none of them prose
    (``and``, ``per``, ...), followed by an operator, ``=`` or a bracket; a rate (``/hour``) may
    be followed by anything."""
    if tokens[i - 1].kind not in (NUM, CUR, UNIT) or tokens[i].kind not in (WORD, OP):
        return 0
    if (tokens[i].kind == WORD) != tokens[i].gap:  # a word is spaced from its number, a rate's "/" glued
        return 0
    j, words, rate = i, 0, False
    while j < len(tokens) and words <= 4:
        t = tokens[j]
        spaced = t.gap or tokens[j - 1].text == "/"
        word = t.text.lower()
        if t.kind == WORD and len(word) > 1 and word not in _STOP_WORDS and spaced and (j > i or word not in
                                                                                          _CONNECTORS):
            words, j = words + 1, j + 1
            rate = rate or word == "per"
        elif t.kind == OP and t.text == "/" and not t.gap and j + 1 < len(tokens) and \
                tokens[j + 1].kind == WORD and not tokens[j + 1].gap:
            rate, j = True, j + 1
        else:
            break
    if words == 0 or words > 4 or tokens[j - 1].kind != WORD or tokens[j - 1].text.lower() in ("per", "of"):
        return 0
    if rate or (j < len(tokens) and tokens[j].kind in (OP, EQ, RP)):
        return j
    return 0


def _boundary_ok(tok: Tok | None, neighbour: Tok, task: str, *, after: Tok | None = None) -> bool:
    """Whether ``tok``, just outside an operand whose edge token is ``neighbour``, ends it cleanly."""
    if tok is None or tok.kind in (BOUND, EQ, LP, RP):
        return True
    touching = not (neighbour.gap if tok.start < neighbour.start else tok.gap)
    if tok.kind == WORD:  # prose, unless it touches the operand or is a MATH variable
        return not touching and (task == "number" or len(tok.text) > 1)
    if tok.kind == PUNCT and tok.text in _SAFE_PUNCT | ({"!"} if task == "number" else set()):
        glued = after is not None and not (after.gap if after.start > tok.start else tok.gap)
        return not (touching and glued and after.kind in (NUM, WORD, CMD, SYM))  # "3:30", "0.\overline{3}"
    return False


def _left(tokens: list[Tok], eq: int, task: str) -> list[Tok] | None:
    start = eq
    while start > 0 and tokens[start - 1].kind in _RUN and eq - start < 80:
        start -= 1
    depth = 0
    for k in range(eq - 1, start - 1, -1):
        kind = tokens[k].kind
        depth += kind == RP
        depth -= kind == LP
        if depth < 0:
            start, depth = k + 1, 0
            break
    run = tokens[start:eq]
    if not run or depth > 0 or sum(t.kind == LP for t in run) != sum(t.kind == RP for t in run):
        return None
    stop = tokens[start - 1] if start else None
    before = tokens[start - 2] if start >= 2 else None
    if not _boundary_ok(stop, run[0], task, after=before):
        return None
    if run[0].kind == LP and stop is not None and (stop.kind == CMD or stop.kind == WORD and task == "math"):
        return None  # a function's argument: "f \left( \frac{1}{2} \right) = 3", "\sqrt (16) = 4"
    if run[0].kind == OP and not _unary(run, stop):
        return None
    if run[-1].kind == OP:
        return None
    return [t for t in run if t.kind != UNIT]


def _unary(run: list[Tok], stop: Tok | None) -> bool:
    if run[0].op != "-" or len(run) < 2 or run[1].gap or run[1].kind not in (NUM, LP, FRAC, CUR):
        return False
    return stop is None or stop.kind != WORD or len(stop.text) > 1 or stop.text in "aAI"


def _right(tokens: list[Tok], eq: int, task: str) -> tuple[list[Tok], str] | None:
    """The right operand of an ``=`` and how exactly it is meant: ``exact``, ``approximate`` (``≈``,
    "about") or ``boxed`` (a MATH final answer, possibly rounded as its problem asked)."""
    begin, approx = eq + 1, "exact" if tokens[eq].text in ("=", "==") else "approximate"
    while begin < len(tokens) and (tokens[begin].text == "~" or tokens[begin].text.lower() in _APPROX_WORDS):
        begin, approx = begin + 1, "approximate"
    if begin < len(tokens) and tokens[begin].kind == BOXED:
        begin, approx = begin + 1, "boxed" if approx == "exact" else approx
    end, depth = begin, 0
    while end < len(tokens) and tokens[end].kind in _RUN and end - begin < 80:
        kind = tokens[end].kind
        depth += kind == LP
        depth -= kind == RP
        if depth < 0:
            break
        end += 1
    nxt = tokens[end] if end < len(tokens) else None
    after = tokens[end + 1] if end + 1 < len(tokens) else None
    if end > begin and nxt is not None and not _boundary_ok(nxt, tokens[end - 1], task, after=after):
        return None
    while end > begin and tokens[end - 1].kind in (UNIT, CUR):
        end -= 1
    run = tokens[begin:end]
    if not run or sum(t.kind == LP for t in run) != sum(t.kind == RP for t in run) or run[-1].kind == OP:
        return None
    if run[0].kind == OP and not _unary(run, None):
        return None
    return [t for t in run if t.kind != UNIT], approx


def _claim(text: str, tokens: list[Tok], eq: int, task: str) -> Claim | None:
    left = _left(tokens, eq, task)
    right = _right(tokens, eq, task)
    if left is None or right is None or not has_operator(left):
        return None
    right_tokens, approx = right
    try:
        value = evaluate(left)
        claimed_value = evaluate(right_tokens)
    except NotArithmetic:
        return None
    numbers = [t for t in right_tokens if t.kind == NUM]
    if not has_operator(right_tokens):
        rule = _states(value, numbers[0], claimed_value, approx) if len(numbers) == 1 else None
        if rule is None and task == "math" and len(numbers) == 1 and value.denominator != 1 and \
                numbers[0].decimals == 0 and abs(value - claimed_value) <= Fraction(1, 2):
            rule = "rounded"  # MATH problems ask for answers "to the nearest whole number"
    elif claimed_value == value:
        rule = "equal"
    else:
        lead = right_tokens[1:] if right_tokens[0].kind == OP else right_tokens
        running = len(lead) > 2 and lead[0].kind == NUM and lead[1].kind == OP and lead[0] is numbers[0]
        sign = -1 if lead is not right_tokens and right_tokens[0].op == "-" else 1
        rule = _states(value, numbers[0], sign * numbers[0].value, approx) if running else None
        rule = "running" if rule else None
    start, end = left[0].start, right_tokens[-1].end
    return Claim(start, end, text[start:tokens[eq].start].strip(), text[tokens[eq].end:end].strip(), value,
                 claimed_value, rule is not None, rule or "wrong")


def _states(value: Fraction, number: Tok, written: Fraction, approx: str) -> str | None:
    """The rule under which the written number states ``value`` (None if it does not)."""
    forms = [(written, number.decimals + 2 * number.percent, "exact")]
    if number.percent:
        forms.append((written * 100, number.decimals, "percent"))
    for claimed, decimals, rule in forms:
        if value == claimed:
            return rule
        if decimals > 0:
            if abs(value - claimed) <= Fraction(1, 2 * 10 ** decimals):
                return "rounded"
            if Fraction(int(value * 10 ** decimals), 10 ** decimals) == claimed:
                return "truncated"
        if approx != "exact":
            zeros = _trailing_zeros(claimed) if decimals == 0 and approx == "approximate" else 0
            tolerance = Fraction(10 ** zeros, 2) if decimals == 0 else Fraction(1, 2 * 10 ** decimals)
            if abs(value - claimed) <= tolerance:
                return "approximate"
    return None


def _trailing_zeros(value: Fraction) -> int:
    if value.denominator != 1 or value == 0:
        return 0
    digits = str(abs(value.numerator))
    return min(len(digits) - len(digits.rstrip("0")), len(digits) - 1)

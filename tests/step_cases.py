"""A labelled set for ``verifiers.check_steps``, built from GSM8K reference solutions at run time.

GSM8K solutions carry calculator annotations (``48/2 = <<48/2=24>>24``) that prove each step. A
solution is *clean* when every annotation is arithmetically true (computed here from the annotation
with :mod:`ast` and fractions, independently of the checker) and every ``=`` written in it is such an
annotated step, its visible result equal to the annotation's and its line showing the annotation's
operands (this drops typos such as ``8*3 = <<80*3=240>>240``). The cases are the rationales a
ground-truth bank stores (annotations stripped, final line ``The answer is N``):

* ``clean``: a clean solution as it is; any wrong claim reported is a false alarm;
* ``result``: the same solution with one written step's result changed;
* ``operand``: the same solution with one operand of one written step changed (result kept).

The final answer line is never touched. A *written* step is one whose equality is in the text
(``= <<...>>24``); steps that appear only inside an annotation cannot be planted. Each planted case
records the span of the changed number in its rationale.
"""
from __future__ import annotations

import ast
import json
import os
import random
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

ANNOTATION = re.compile(r"<<([^<>]*)>>")
WRITTEN = re.compile(r"=\s*[$€£]?\s*$")
NUMBER = re.compile(r"(?<![0-9.,])(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?(?![0-9])")
KINDS = ("clean", "result", "operand")


@dataclass(frozen=True)
class Case:
    kind: str
    problem: int
    rationale: str
    span: tuple[int, int] | None = None


def load_solutions(split: str = "train") -> list[str]:
    path = Path(os.environ["MANYSHOT_DATA_DIR"]) / "gsm8k" / f"{split}.jsonl"
    return [json.loads(line)["answer"] for line in path.read_text().splitlines() if line.strip()]


def calculate(expr: str) -> Fraction:
    """The exact value of a calculator annotation (``+ - * / **``, brackets, numbers only)."""
    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return Fraction(str(node.value))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp):
            a, b = walk(node.left), walk(node.right)
            ops = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b, ast.Div: lambda: a / b,
                   ast.Pow: lambda: a ** int(b) if b.denominator == 1 and abs(b) < 64 else None}
            value = ops.get(type(node.op), lambda: None)()
            if value is not None:
                return value
        raise ValueError(f"not a calculator expression: {expr!r}")
    return walk(ast.parse(expr.replace(",", ""), mode="eval"))


def rationale(raw: str) -> str:
    steps, _, answer = raw.rpartition("####")
    return f"{ANNOTATION.sub('', steps).strip()}\nThe answer is {answer.strip()}"


def clean_steps(raw: str) -> list[tuple[re.Match, Fraction, re.Match]] | None:
    """The annotated steps of a clean solution (annotation, its value, the visible result), else None."""
    body = raw.rpartition("####")[0]
    outside = ANNOTATION.sub(lambda m: "\0" * len(m.group()), body)
    steps = []
    for m in ANNOTATION.finditer(body):
        expr, _, result = m.group(1).rpartition("=")
        visible = NUMBER.match(body, m.end())
        try:
            value = calculate(expr)
        except (ValueError, SyntaxError, ZeroDivisionError):
            return None
        if visible is None or value != Fraction(result.replace(",", "")) or \
                Fraction(visible.group().replace(",", "")) != value:
            return None
        if WRITTEN.search(body, 0, m.start()):
            line = outside[outside.rfind("\n", 0, m.start()) + 1:m.start()]
            shown = {Fraction(n.group().replace(",", "")) for n in NUMBER.finditer(line)}
            if any(Fraction(n.group().replace(",", "")) not in shown for n in NUMBER.finditer(expr)):
                return None  # the written left side does not show the annotation's operands
            steps.append((m, value, visible))
    written = sum(1 for m in re.finditer("=", outside))
    return steps if steps and written == len(steps) else None


def _wrong(number: str, rng: random.Random) -> str:
    decimals = len(number.split(".")[1]) if "." in number else 0
    value = Fraction(number.replace(",", ""))
    while True:
        new = value + rng.choice((1, 2, 3, 5, 10)) * rng.choice((-1, 1)) * Fraction(1, 10 ** decimals)
        if new != value and (new >= 0 or value < 0):
            break
    text = f"{float(new):.{decimals}f}" if decimals else str(int(new))
    return f"{int(new):,}" if "," in number and not decimals else text


def _plant(raw: str, steps, kind: str, rng: random.Random) -> tuple[str, int, int] | None:
    m, value, visible = rng.choice(steps)
    if kind == "result":
        start, end, new = visible.start(), visible.end(), _wrong(visible.group(), rng)
    else:
        line_start = raw.rfind("\n", 0, m.start()) + 1
        left = ANNOTATION.sub(lambda a: "=" * len(a.group()), raw[line_start:m.start()]).rstrip(" $€£")[:-1]
        line_start += left.rfind("=") + 1  # this step's left side: after the previous equality on its line
        expr = m.group(1).rpartition("=")[0]
        operands = {Fraction(n.group().replace(",", "")) for n in NUMBER.finditer(expr)}
        last = {Fraction(n.group().replace(",", "")): n for n in NUMBER.finditer(raw, line_start, m.start())}
        found = [n for value_, n in last.items() if value_ in operands]
        if not found:
            return None
        n = rng.choice(found)
        old = n.group()
        for _ in range(10):
            new = _wrong(old, rng)
            changed = re.sub(rf"(?<![0-9.]){re.escape(old.replace(',', ''))}(?![0-9.])", new.replace(",", ""),
                             expr.replace(",", ""), count=1)
            try:
                if calculate(changed) != value:
                    break
            except (ValueError, ZeroDivisionError):
                continue
        else:
            return None
        start, end = n.start(), n.end()
    edited = raw[:start] + new + raw[end:]
    offset = len(ANNOTATION.sub("", raw[:start]))
    return edited, offset, offset + len(new)


def labelled_set(n: int, seed: int, solutions: list[str] | None = None) -> list[Case]:
    """``n`` clean cases and ``n`` planted ones (alternately result and operand) from ``n`` clean solutions
    drawn with ``seed``; the same planted solution is never also the clean case of another kind."""
    solutions = load_solutions() if solutions is None else solutions
    rng = random.Random(seed)
    order = list(range(len(solutions)))
    rng.shuffle(order)
    cases: list[Case] = []
    planted = 0
    for index in order:
        if planted >= n:
            break
        steps = clean_steps(solutions[index])
        if steps is None:
            continue
        kind = KINDS[1 + planted % 2]
        made = _plant(solutions[index], steps, kind, rng)
        if made is None:
            continue
        edited, start, end = made
        cases.append(Case("clean", index, rationale(solutions[index])))
        cases.append(Case(kind, index, rationale(edited), (start, end)))
        planted += 1
    return cases

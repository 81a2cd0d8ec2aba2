"""Build a small results folder with the scripted fake model and write its HTML report (docs/report.png).

    MANYSHOT_DATA_DIR=../shared/data .venv/bin/python scripts/demo_report.py --out /tmp/demo

The fake answers correctly with a probability that grows with the number of shots in the prompt, and
sometimes omits "The answer is", so strict and flexible scores differ. No model is loaded.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def fake_script(test_answers: dict[str, str]):
    def script(prompt, sample, rng):
        question = prompt[-1]["content"]
        gold = test_answers.get(question, "0")
        shots = sum(m["role"] == "assistant" for m in prompt)
        seed = hashlib.sha256(f"{question}/{shots}/{sample}".encode()).hexdigest()
        r = random.Random(seed)
        steps = f"Let me work through it.\n{r.randint(2, 9)} * {r.randint(2, 9)} is needed first."
        if r.random() < 0.35 + 0.03 * shots:
            return f"{steps}\nThe answer is {gold}" if r.random() < 0.85 else f"{steps}\nSo we get {gold}."
        return f"{steps}\nThe answer is {int(r.random() * 100)}"
    return script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="manyshot-demo-prefect-"))
    from flows.build.flow import build_bank
    from flows.core.specs import BuildSpec, EvalSpec, Selection
    from flows.core.data import load_problems
    from flows.evaluate.flow import evaluate
    from flows.report.html_report import write_report
    from generators.fake import FakeGenerator

    out = Path(args.out)
    answers = {p.question: p.answer for p in load_problems("gsm8k", "test")}
    banks = tuple(build_bank(BuildSpec(mode=mode, selection=Selection(task="gsm8k", limit=24)),
                             out=str(out / "banks")) for mode in ("ground-truth", "unsupervised"))
    spec = EvalSpec(task="gsm8k", banks=banks, shots=(0, 2, 4, 8, 16), seeds=2, limit=40, max_tokens=64)
    folder = evaluate(spec, out=str(out / "evals"), generator=FakeGenerator(fake_script(answers), model_id="fake"))
    print(write_report(folder))


if __name__ == "__main__":
    main()

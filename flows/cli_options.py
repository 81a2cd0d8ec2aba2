"""What ``manyshot`` subcommands share: ``--version``, the output options (``--debug``, ``--quiet``,
``--log-level``), the model settings of commands that load a model, the options of bank build and eval
(:func:`common`, with the generator of their ``--endpoint`` servers) and help that shows defaults and examples
(:func:`finish`)."""
from __future__ import annotations

import argparse
import dataclasses
from importlib.metadata import version
from typing import Any

from flows.cli_types import DEBUG_HELP, POSITIVE
from flows.core.tasks import TASKS

S = argparse.SUPPRESS
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
QUIET_HELP = "print only results and errors: no progress display, no log lines below ERROR"
LOG_LEVEL_HELP = ("the least severe log lines shown, from manyshot, Prefect and libraries (default INFO; vLLM's "
                  "engine internals only at DEBUG)")

#: Model settings: the engine's, not the content's (bank and eval keys leave them out). Each maps to the
#: environment variable the in-process vLLM engine reads (:mod:`generators.vllm_backend`).
MODEL_SETTINGS = {"max_model_len": "MANYSHOT_MAX_MODEL_LEN", "kv_cache_gib": "MANYSHOT_KV_CACHE_GIB",
                  "block_size": "MANYSHOT_BLOCK_SIZE", "dtype": "MANYSHOT_DTYPE",
                  "tensor_parallel": "MANYSHOT_TENSOR_PARALLEL"}

GT_BANK = '"$(manyshot bank build --task gsm8k --mode ground-truth --limit {n} | tail -n 1)"'  # prints its path
EXAMPLES = {
    "bank build": ["manyshot bank build --task gsm8k --mode ground-truth --limit 8",
                   "manyshot bank build --task gsm8k --mode reinforced --limit 16 --samples 2 --model embedded-tiny"],
    "bank list": ["manyshot bank list", "manyshot bank list runs/banks --json"],
    "bank show": [f"manyshot bank show {GT_BANK.format(n=8)} --json"],
    "bank export": [f"manyshot bank export {GT_BANK.format(n=8)} --to exports/gsm8k-shots --force"],
    "bank diff": [f"manyshot bank diff {GT_BANK.format(n=8)} {GT_BANK.format(n=12)} --limit 5"],
    "eval": ["manyshot eval --task gsm8k --shots 0 --limit 5 --name zero-shot",
             f"manyshot eval --task gsm8k --bank {GT_BANK.format(n=32)} --shots 0,4 --limit 20",
             "manyshot eval --config eval.toml --limit 10   # eval.toml: see docs/evaluation.md; flags override it"],
    "ablate": ["manyshot ablate configs/smoke.toml --out runs"],
    "serve": ["manyshot serve --config configs/pipeline.example.toml"],
    "deploy": ["manyshot deploy --config configs/pipeline.example.toml --work-pool default"],
    "run": ["manyshot run --out runs", "manyshot run --model embedded-tiny --quiet"],
    "report": ["manyshot report runs/evals/latest --out report.html   # the last eval"],
    "task check": ["manyshot task check gsm8k"],
    "task list": ["manyshot task list"],
    "analyze similarity": ["manyshot analyze similarity runs/evals/latest --embedder tfidf   # the last eval"],
    "analyze nll": ["manyshot analyze nll runs/evals/latest --limit 5   # the last eval"],
}


def version_text() -> str:
    return f"manyshot {version('manyshot')}"


def add_model_settings(p: argparse.ArgumentParser) -> None:
    """Engine settings of the in-process vLLM model (the same as the environment variables they set)."""
    g = p.add_argument_group("model settings (in-process vLLM engine; they change no bank or eval key)")
    g.add_argument("--max-model-len", type=POSITIVE, default=S, metavar="TOKENS",
                   help="context length (same as MANYSHOT_MAX_MODEL_LEN; default: the model's, lowered to what the "
                   "KV cache holds)")
    g.add_argument("--kv-cache-gib", type=POSITIVE, default=S, metavar="GIB",
                   help="KV cache size (same as MANYSHOT_KV_CACHE_GIB; default: 8 contexts, at most 40%% of free "
                   "memory on CPU, vLLM's share on GPU)")
    g.add_argument("--block-size", type=POSITIVE, default=S, metavar="TOKENS",
                   help="KV cache block size (same as MANYSHOT_BLOCK_SIZE; default 32 on CPU, vLLM's on GPU)")
    g.add_argument("--dtype", choices=("auto", "bfloat16", "float16", "float32"), default=S,
                   help="weights and activations (same as MANYSHOT_DTYPE; default auto: the model's)")
    g.add_argument("--tensor-parallel", type=POSITIVE, default=S, metavar="GPUS",
                   help="GPUs one model is split over (same as MANYSHOT_TENSOR_PARALLEL; vLLM's tensor_parallel_size; "
                   "default 1)")


def common(p: argparse.ArgumentParser, *, config: bool = False) -> None:
    """The options of bank build and eval; with ``config`` (eval) --task and --model may come from --config."""
    p.add_argument("--task", required=not config, default=S, metavar="TASK",
                   help=f"a built-in task ({', '.join(TASKS)}) or a task file (.toml, see docs/tasks.md)"
                   + ("; required unless the --config file has a task" * config))
    p.add_argument("--allow-unparsed", action="store_true",
                   help="task files: skip rows whose gold answer does not parse under the declared format")
    p.add_argument("--data-dir", default=None, help="folder with {gsm8k,math}/{train,test}.jsonl "
                   "(default: $MANYSHOT_DATA_DIR, else ./data if it holds them, else the Hugging Face hub)")
    p.add_argument("--model", default=S if config else "embedded",
                   help="embedded, embedded-tiny, an HF model id or a local path" + (" (default embedded)" * config))
    p.add_argument("--endpoint", action="append", default=[], help="OpenAI-compatible server URL (repeatable)")
    no_progress(p)
    add_model_settings(p)


def no_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true",
                   help="no progress display or progress lines on stderr (same as MANYSHOT_PROGRESS=0)")


def endpoint_generator(args, model: str | None = None):
    """The generator of the --endpoint servers; None (the in-process engine) without them."""
    if not args.endpoint:
        return None
    from generators import load_generator

    return load_generator(model or args.model, endpoints=args.endpoint)


def _spec_defaults() -> dict[str, dict[str, Any]]:
    """The defaults options left out take, per command: the specs' dataclass defaults (:mod:`flows.config`)."""
    from flows.config import ROUNDS_KEYS, SELECTION_KEYS, SPEC_KEYS
    from flows.core.specs import BuildSpec, EvalSpec, Rounds, Selection

    def of(cls) -> dict[str, Any]:
        return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}

    build = {key: of(cls)[field] for cls, names in ((Selection, SELECTION_KEYS), (Rounds, ROUNDS_KEYS),
                                                     (BuildSpec, SPEC_KEYS))
             for key, field in names.items() if field in of(cls)}
    evals = of(EvalSpec) | {"temperature": "0 for one sample, 0.7 for several", "banks": "none"}
    return {"bank build": build | {"zero_shot": False}, "eval": evals}


def _shown(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value) or "none"
    return str(value).replace("%", "%%")


def _with_default(action: argparse.Action, defaults: dict[str, Any]) -> None:
    """Append ``(default: ...)`` to an option's help unless it names its default already."""
    if not action.option_strings or action.help == S or "default" in (action.help or ""):
        return
    value = defaults.get(action.dest, S) if action.default == S else action.default
    if value in (S, None, False) or value == []:
        return
    action.help = f"{action.help} (default: {_shown(value)})" if action.help else f"(default: {_shown(value)})"


def _commands(parser: argparse.ArgumentParser, path: str = "") -> list[tuple[str, argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += [(f"{path} {name}".strip(), child), *_commands(child, f"{path} {name}".strip())]
    return found


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written (examples keep their lines)."""


def finish(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--version`` to ``parser``; give every subcommand the output options, its defaults in the help and an
    epilog of examples."""
    parser.add_argument("--version", action="version", version=version_text())
    parser.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    parser.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS, default="INFO", help=LOG_LEVEL_HELP)
    defaults = _spec_defaults()
    for path, command in _commands(parser):
        command.formatter_class = HelpFormatter
        # `manyshot eval ... --quiet` as well as `manyshot --quiet eval ...`
        command.add_argument("--debug", action="store_true", default=S, help=DEBUG_HELP)
        command.add_argument("--quiet", action="store_true", default=S, help=QUIET_HELP)
        command.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS, default=S, help=LOG_LEVEL_HELP)
        for action in command._actions:
            _with_default(action, defaults.get(path, {}))
        if path in EXAMPLES:
            command.epilog = "examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES[path])
    return parser

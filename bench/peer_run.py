"""Run one tool's command line with vLLM's ``LLM`` instrumented, for bench/peers.py.

    python bench/peer_run.py STATS.json lm_eval ARGS...     (under .venv-peers/bin/python)
    python bench/peer_run.py STATS.json manyshot ARGS...    (under .venv/bin/python)

Both tools drive vLLM in-process through ``vllm.LLM``. Before either is imported, ``LLM.__init__`` and
``LLM.generate`` are wrapped to record the engine load time, the time inside ``generate``, and per request the
prompt tokens, the tokens served from the prefix cache (``RequestOutput.num_cached_tokens``), the generated tokens
and a hash of the prompt's token ids (so two tools' prompts can be compared). The record is written to STATS.json
when the command ends, however it ends. Nothing else about the tools changes.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time


def instrument(stats: dict) -> None:
    from vllm.entrypoints.llm import LLM

    init, generate = LLM.__init__, LLM.generate

    def timed_init(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return init(self, *args, **kwargs)
        finally:
            stats["load_s"] += time.perf_counter() - t0
            stats["engine_args"] = {k: v for k, v in kwargs.items()
                                    if k in ("model", "dtype", "max_model_len", "block_size", "enable_prefix_caching",
                                             "seed", "enforce_eager", "max_num_seqs", "gpu_memory_utilization")}

    def timed_generate(self, *args, **kwargs):
        t0 = time.perf_counter()
        outputs = generate(self, *args, **kwargs)
        stats["engine_s"] += time.perf_counter() - t0
        stats["generate_calls"] += 1
        for out in outputs:
            ids = list(out.prompt_token_ids or [])
            stats["requests"].append({
                "prompt_tokens": len(ids),
                "cached_tokens": int(out.num_cached_tokens or 0),
                "generated_tokens": sum(len(c.token_ids) for c in out.outputs),
                "prompt_sha": hashlib.sha1(json.dumps(ids).encode()).hexdigest()[:16],
            })
        return outputs

    LLM.__init__, LLM.generate = timed_init, timed_generate


def main() -> int:
    out, tool, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    stats = {"tool": tool, "argv": args, "load_s": 0.0, "engine_s": 0.0, "generate_calls": 0, "requests": [],
             "exit": None}
    t0 = time.perf_counter()
    instrument(stats)
    code = 1
    try:
        if tool == "lm_eval":
            from lm_eval.__main__ import cli_evaluate

            sys.argv = ["lm_eval", *args]
            cli_evaluate()
            code = 0
        elif tool == "manyshot":
            from flows.cli import main as manyshot

            code = manyshot(args)
        else:
            raise SystemExit(f"peer_run: unknown tool {tool!r} (lm_eval or manyshot)")
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        stats["exit"] = code
        stats["in_process_s"] = time.perf_counter() - t0
        with open(out, "w") as f:
            json.dump(stats, f)
    return code


if __name__ == "__main__":
    sys.exit(main())

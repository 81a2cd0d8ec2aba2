"""The ``manyshot`` command line: bank build/list/show/export/diff, eval, ablate, run (the main job), serve, deploy,
report, analyze, task check/list."""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from flows.cli_eval import add_eval_command, apply_model_settings, eval_entry, link_run, run_eval, spec_from_args
from flows.cli_options import add_model_settings, common, endpoint_generator, finish, no_progress
from flows.cli_types import DEBUG_HELP, EXIT_CODES, NON_NEGATIVE, POSITIVE, Parser, ints, temperature, words
from flows.core.schema import SOURCES

DESCRIPTION = """manyshot: many-shot in-context learning pipelines.
Build shot banks (bank build/list/show/export/diff), evaluate them (eval), run ablation grids (ablate),
the main job (run), scheduled jobs (serve, deploy), reports (report), analyses (analyze) and task files (task).
Every command takes --help (defaults and examples), --quiet, --log-level and --debug."""
S = argparse.SUPPRESS  # options left out take the defaults of flows.config's specs (one place)
# The main job, sized for about 10 minutes on 2 CPU cores: a reinforced bank from 64 problems x 4 samples (one
# chunk; at the ~39% GSM8K yield about 25 shots, so its K=64 cell is skipped with the reason) and a ground-truth
# bank from 192 problems (the dataset's solutions, built in seconds), both evaluated up to K=64.
RUN_DEFAULTS = {"task": "gsm8k", "reinforced_limit": 64, "truth_limit": 192, "samples": 4, "rounds": 1,
                "eval_limit": 20, "shots": "0,4,16,64"}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="manyshot", description=DESCRIPTION, epilog=EXIT_CODES,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", required=True)

    bank = sub.add_parser("bank", help="build and inspect shot banks").add_subparsers(dest="bank_command", required=True)
    b = bank.add_parser("build", help="build a shot bank (prints its path)")
    common(b)
    b.add_argument("--mode", required=True, choices=SOURCES)
    b.add_argument("--limit", type=POSITIVE, default=S, help="training problems drawn")
    b.add_argument("--seed", type=NON_NEGATIVE, default=S, help="seed of the draw and of sampling")
    b.add_argument("--subjects", type=words, default=S, help="MATH subjects, comma-separated")
    b.add_argument("--levels", type=ints, default=S, help="MATH levels, comma-separated")
    b.add_argument("--samples", type=POSITIVE, default=S, help="rationales sampled per problem and round")
    b.add_argument("--temperature", type=temperature, default=S, help="sampling temperature of the first round")
    b.add_argument("--retry-temperature", type=temperature, default=S, help="sampling temperature of later rounds")
    b.add_argument("--max-tokens", type=POSITIVE, default=S, help="tokens per rationale")
    b.add_argument("--rounds", type=POSITIVE, default=S, help="rounds that retry the unsolved problems")
    b.add_argument("--keep", choices=("first", "all-distinct"), default=S, help="correct rationales kept per problem")
    b.add_argument("--max-per-problem", type=POSITIVE, default=S, help="with --keep all-distinct: at most N")
    b.add_argument("--zero-shot", action="store_true", default=S, help="zero-shot CoT prompt instead of few-shot")
    b.add_argument("--iterate-from", default=S, help="reinforced bank to use as a many-shot prompt")
    b.add_argument("--prompt-shots", type=POSITIVE, default=S)
    b.add_argument("--chunk-size", type=POSITIVE, default=S)
    b.add_argument("--require-valid-steps", action="store_true", default=S,
                   help="reinforced: drop correct rationales with a wrong arithmetic step (verifiers.check_steps)")
    b.add_argument("--out", default=None, metavar="DIR",
                   help="the folder of banks the bank file is written to (default runs/banks)")
    ls = bank.add_parser("list", help="list banks in a folder")
    ls.add_argument("dir", nargs="?", default=None, help="a folder of banks (default runs/banks)")
    ls.add_argument("--json", action="store_true", help="one JSON document: the folder, its banks, unreadable files")
    show = bank.add_parser("show", help="counts, provenance and a sample of a bank")
    show.add_argument("path", help="a bank file (.parquet)")
    show.add_argument("--json", action="store_true", help="one JSON document: counts, configuration, provenance, "
                      "step check and a sample shot")
    ex = bank.add_parser("export", help="write a bank as a Hugging Face dataset folder (Parquet + dataset card)")
    ex.add_argument("path")
    ex.add_argument("--to", required=True, metavar="DIR", help="folder to write (must be new or empty)")
    ex.add_argument("--force", action="store_true", help="replace a previous export in DIR")
    ex.add_argument("--push-to-hub", metavar="REPO_ID", default=None, help="also upload DIR as this dataset repo")
    ex.add_argument("--private", action="store_true", help="create the hub repo as private")
    df = bank.add_parser("diff", help="shots added, removed and changed between two versions of a bank")
    df.add_argument("a", help="older bank")
    df.add_argument("b", help="newer bank")
    df.add_argument("--json", action="store_true", help="the full diff as JSON")
    df.add_argument("--limit", type=NON_NEGATIVE, default=20, help="problems listed per section")
    df.add_argument("--diffs", type=NON_NEGATIVE, default=3, help="rationale diffs shown")

    add_eval_command(sub)

    a = sub.add_parser("ablate", help="run an ablation grid from a TOML spec")
    a.add_argument("config", help="an ablation spec (.toml, see configs/)")
    a.add_argument("--data-dir", default=None, help="datasets folder (default: $MANYSHOT_DATA_DIR, else the hub)")
    a.add_argument("--out", default=None, metavar="DIR", help="the root of the ablation: DIR/banks, DIR/evals and "
                   "DIR/ablation-NAME (default: the spec's out, else runs)")
    a.add_argument("--endpoint", action="append", default=[],
                   help="OpenAI-compatible server URL (repeatable); overrides the spec's endpoints")
    a.add_argument("--reference", default=None, metavar="NAME",
                   help="bank (spec name or label) to show paired differences against; overrides the spec's")
    no_progress(a)
    add_model_settings(a)

    s = sub.add_parser("serve", help="serve the scheduled jobs of a pipeline config (Prefect deployments)")
    s.add_argument("--config", required=True, help="a pipeline config (.toml)")
    d = sub.add_parser("deploy", help="register the pipeline's deployments on a running Prefect server / work pool")
    d.add_argument("--config", required=True, help="a pipeline config (.toml)")
    d.add_argument("--work-pool", required=True, help="the Prefect work pool that runs the deployments")

    r = sub.add_parser("run", help="the main job: build a reinforced and a ground-truth bank, then evaluate both")
    r.add_argument("--data-dir", default=None, help="datasets folder (default: $MANYSHOT_DATA_DIR, else the hub)")
    r.add_argument("--model", default="embedded", help="embedded, embedded-tiny, an HF model id or a local path")
    r.add_argument("--out", default="runs", metavar="DIR",
                   help="the root of the job: banks in DIR/banks, eval folders in DIR/evals")
    no_progress(r)
    add_model_settings(r)

    rp = sub.add_parser("report", help="write a self-contained HTML report of an eval results or ablation folder")
    rp.add_argument("dir", help="an eval results folder (runs/evals/...) or an ablation folder (runs/ablation-...)")
    rp.add_argument("--out", default=None, metavar="FILE", help="the HTML file to write (default DIR/report.html)")
    rp.add_argument("--data-dir", default=None, help="datasets folder, for the test questions "
                    "(default: $MANYSHOT_DATA_DIR, else the Hugging Face hub)")
    rp.add_argument("--bank-dir", action="append", default=[], help="another folder to look for banks in (repeatable)")
    rp.add_argument("--sample-items", type=NON_NEGATIVE, default=40,
                    help="items per cell in the sample browser (default 40)")
    rp.add_argument("--reference", default=None, metavar="LABEL",
                    help="bank (label or ablation spec name) to show paired differences against (default: the "
                    "ground-truth bank, else the first)")

    t = sub.add_parser("task", help="check and list tasks (built-in and task files)").add_subparsers(
        dest="task_command", required=True)
    tc = t.add_parser("check", help="validate a task file and its data; print what was understood")
    tc.add_argument("file", help="a task file (.toml) or a built-in task name")
    tc.add_argument("--allow-unparsed", action="store_true", help="skip rows whose gold answer does not parse")
    tc.add_argument("--data-dir", default=None, help="datasets folder, for built-in tasks")
    tl = t.add_parser("list", help="the built-in tasks and the task files in the given folders or files")
    tl.add_argument("paths", nargs="*", default=None, help="task files or folders holding them (default: . and ./tasks)")

    an = sub.add_parser("analyze", help="analyses of a finished eval or ablation (tables and plots in its folder)")
    an_sub = an.add_subparsers(dest="analysis", required=True)
    sim = an_sub.add_parser("similarity",
                            help="accuracy vs the test question's cosine similarity to its nearest shot, per K")
    sim.add_argument("dir", help="an eval results folder (runs/evals/...) or an ablation folder (runs/ablation-...)")
    sim.add_argument("--buckets", default="0.3,0.4,0.5,0.6,0.7,0.8,0.9",
                     help="inner bucket edges of the top-1 similarity "
                     "(default 0.3,...,0.9: [-1,0.3), [0.3,0.4), ..., [0.9,1])")
    sim.add_argument("--embedder", choices=("auto", "minilm", "tfidf"), default="auto",
                     help="auto: MiniLM when the embed extra is installed, else TF-IDF (with a warning)")
    sim.add_argument("--cache-dir", default="data/cache/embeddings",
                     help="embedding cache (default data/cache/embeddings)")
    sim.add_argument("--data-dir", default=None, help="datasets folder, for the test questions")
    sim.add_argument("--bank-dir", action="append", default=[], help="another folder to look for banks in (repeatable)")
    nll = an_sub.add_parser("nll", help="gold-solution NLL vs K beside accuracy vs K (in-process vLLM engine)")
    nll.add_argument("dir", help="an eval results folder (runs/evals/...) or an ablation folder (runs/ablation-...)")
    nll.add_argument("--model", default="embedded", help="the model that scores (default embedded; use the eval's)")
    nll.add_argument("--limit", type=POSITIVE, default=None,
                     help="score the first N test items of each cell (default all)")
    nll.add_argument("--data-dir", default=None, help="datasets folder, for the test questions and solutions")
    nll.add_argument("--bank-dir", action="append", default=[], help="another folder to look for banks in (repeatable)")
    add_model_settings(nll)
    return finish(parser)


def _analyze_nll(args) -> str:
    import time

    from flows.report.nll import analyze, markdown
    from generators import load_generator

    t0 = time.monotonic()
    written = analyze(args.dir, load_generator(args.model), limit=args.limit, data_dir=args.data_dir,
                      bank_dirs=args.bank_dir)
    return "\n".join([markdown(written.table), f"{written.scored} items scored, {written.reused} from checkpoints, "
                      f"{time.monotonic() - t0:.1f} s", *(str(p) for p in written.paths)])


def _analyze_similarity(args) -> str:
    from flows.report.similarity import analyze, parse_edges

    written = analyze(args.dir, edges=parse_edges(args.buckets), embedder=args.embedder, cache_dir=args.cache_dir,
                      data_dir=args.data_dir, bank_dirs=args.bank_dir)
    return "\n".join([f"embedder: {written.embedder}; embedding cache: {written.cache_hits} hits, "
                      f"{written.cache_misses} computed", *(str(p) for p in written.paths)])


def _build_spec(args):
    from flows.config import BUILD_KEYS, build_spec
    from flows.core.taskfile import resolve

    args.task = resolve(args.task, allow_unparsed=args.allow_unparsed)
    return build_spec({k: v for k, v in vars(args).items() if k in BUILD_KEYS}, "manyshot bank build")


def _bank_build(args) -> str:
    from flows.build import build_bank

    return build_bank(_build_spec(args), data_dir=args.data_dir, out=args.out, generator=endpoint_generator(args))


def _bank_list(args) -> None:
    from flows.runtime.banks import DEFAULT_ROOT, BankError, scan_banks

    folder = args.dir or DEFAULT_ROOT
    rows, unreadable = scan_banks(folder)
    if args.json:
        from flows.report.bank_json import bank_list

        print(bank_list(folder, rows, unreadable))
        rows = []
    elif not rows and not unreadable:
        print(f"no banks in {folder}")
    for r in rows:
        print(f"{r['path']}  task={r['task']} mode={r['mode']} shots={r['shots']} model={r['model']} "
              f"created={r['created_at']}")
    if unreadable:
        raise BankError(f"{len(unreadable)} of {len(rows) + len(unreadable)} banks in {folder} could not be read: "
                        + "; ".join(unreadable.values()))


def _bank_show(args) -> None:
    import json

    from flows.runtime.banks import read_bank
    from flows.core.schema import SCHEMA_VERSION, SCHEMA_VERSION_FIELD

    if args.json:
        from flows.report.bank_json import bank_show

        print(bank_show(args.path))
        return
    table, meta = read_bank(args.path)
    df = table.to_pandas()
    print(f"bank: {args.path}\nshots: {len(df)}  problems: {df['problem_id'].nunique()}")
    print(f"schema version: {meta[SCHEMA_VERSION_FIELD]} (this manyshot reads up to {SCHEMA_VERSION})")
    print(f"sources: {df['source'].value_counts().to_dict()}")
    for key in ("config", "run_id", "created_at", "report"):
        print(f"{key}: {json.dumps(meta.get(key), indent=1, default=str)}")
    if meta.get("task_definition"):
        print(f"task definition: {json.dumps(meta['task_definition'], indent=1)}")
    print(f"provenance: model={df['model'].iloc[0]} template={df['template_id'].iloc[0]} "
          f"verifier={df['verifier_version'].iloc[0]} split={df['split'].iloc[0]}")
    from flows.build.bank_report import step_summary

    steps = step_summary(table)
    if steps:
        print(f"step check: {steps['shots with a wrong step']} shots with a wrong step, "
              f"{steps['steps checked']} steps checked ({steps['step counts']})")
        for example in steps["wrong-step examples"]:
            print(f"  {example}")
    sample = df.iloc[0]
    print(f"\nsample shot {sample['shot_id']}:\nQ: {sample['question']}\nA: {sample['rationale']}")


def _run(args) -> None:
    from flows.build.flow import build_bank
    from flows.core.specs import BuildSpec, EvalSpec, Rounds, Selection
    from flows.evaluate.flow import evaluate

    d = RUN_DEFAULTS
    out = Path(args.out)
    rounds = Rounds(samples=d["samples"], temperature=0.7, retry_temperature=1.0, max_tokens=384, rounds=d["rounds"])
    few = Selection(task=d["task"], limit=d["reinforced_limit"])
    reinforced = build_bank(BuildSpec(mode="reinforced", selection=few, model=args.model, rounds=rounds),
                            data_dir=args.data_dir, out=str(out / "banks"))
    truth = build_bank(BuildSpec(mode="ground-truth", selection=Selection(task=d["task"], limit=d["truth_limit"])),
                       data_dir=args.data_dir, out=str(out / "banks"))
    results = evaluate(EvalSpec(task=d["task"], banks=(reinforced, truth), shots=ints(d["shots"]),
                                limit=d["eval_limit"], model=args.model, max_tokens=384),
                       data_dir=args.data_dir, out=str(out / "evals"))
    link_run(out / "evals", results.folder)
    print(f"\nreinforced bank: {reinforced}\nground-truth bank: {truth}\nresults: {results.folder}")


def _prepare_environment() -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Prefect's temporary server gets 20 s to start by default; a busy 2-core box needs more.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # vLLM logs engine internals (and a warning per CPU batch) to stdout; keep the CLI's output readable.
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")


def _preflight(args) -> None:
    """Check a command's inputs before any flow, and Prefect's temporary server, starts (:mod:`flows.preflight`)."""
    from flows import preflight
    from generators import check_loadable

    if args.command == "bank" and args.bank_command == "build":
        preflight.check_build(_build_spec(args), data_dir=args.data_dir, out=args.out, endpoints=args.endpoint)
    elif args.command == "eval":
        preflight.check_eval(spec_from_args(args), data_dir=args.data_dir, out=args.out, endpoints=args.endpoint)
    elif args.command == "run":
        preflight.check_run(args.model, task=RUN_DEFAULTS["task"], data_dir=args.data_dir, out=args.out)
    elif args.command == "ablate":
        preflight.check_ablation(args.config, out=args.out, endpoints=tuple(args.endpoint))
    elif args.command == "report" and args.out:
        preflight.check_writable(args.out, "--out", file=True)
    elif args.command == "analyze" and args.analysis == "nll":
        check_loadable(args.model)


def main(argv: list[str] | None = None) -> int:
    """Run a command; return the exit code (:data:`flows.errors.EXIT_CODES`)."""
    args = build_parser().parse_args(argv)
    _prepare_environment()
    from flows.runtime import logs

    level = logs.configure(args.log_level, args.quiet)
    if getattr(args, "no_progress", False):
        os.environ["MANYSHOT_PROGRESS"] = "0"
    data_dir_env = os.environ.get("MANYSHOT_DATA_DIR")
    if getattr(args, "data_dir", None):  # task files with [data] root = "data_dir" (and the processes started) read it
        os.environ["MANYSHOT_DATA_DIR"] = str(Path(args.data_dir).resolve())
    from prefect.exceptions import TerminationSignal

    logs.apply(level)

    from flows.cli_types import EXIT_BROKEN_PIPE, EXIT_ERROR, EXIT_USAGE
    from flows.errors import REPORTED, UsageError, message, quiet_prefect_tracebacks
    from flows.runtime.interrupt import describe, exit_code, install_handlers, start_prefect_server_shielded

    # SIGTERM takes Ctrl-C's path (finished cells and chunks kept, a note, exit 143); `serve` keeps Prefect's.
    restore = install_handlers() if args.command != "serve" else None
    loud = quiet_prefect_tracebacks() if not args.debug else None
    try:
        apply_model_settings(eval_entry(args) if args.command == "eval" else vars(args))
        _preflight(args)
        if args.command in ("eval", "ablate", "run") or getattr(args, "bank_command", None) == "build":
            start_prefect_server_shielded()  # so that Ctrl-C leaves it running until the flow has ended
        if args.command == "bank" and args.bank_command == "build":
            print(_bank_build(args))
        elif args.command == "bank" and args.bank_command == "list":
            _bank_list(args)
        elif args.command == "bank" and args.bank_command == "export":
            from flows.report.export import export_command

            export_command(args.path, args.to, force=args.force, repo_id=args.push_to_hub, private=args.private)
        elif args.command == "bank" and args.bank_command == "diff":
            from flows.report.diff import diff_command

            print(diff_command(args.a, args.b, as_json=args.json, limit=args.limit, diffs=args.diffs))
        elif args.command == "bank":
            _bank_show(args)
        elif args.command == "eval":
            print(run_eval(args))
        elif args.command == "run":
            _run(args)
        elif args.command == "serve":
            from flows.schedule import serve

            serve(args.config)
        elif args.command == "deploy":
            from flows.schedule import deploy

            print(deploy(args.config, work_pool=args.work_pool))
        elif args.command == "ablate":
            from flows.ablate import run_ablation

            print(run_ablation(args.config, data_dir=args.data_dir, out=args.out, endpoints=tuple(args.endpoint),
                               reference=args.reference))
        elif args.command == "report":
            from flows.report.html_report import write_report
            from flows.report.samples import Limits

            print(write_report(args.dir, args.out, data_dir=args.data_dir, bank_dirs=args.bank_dir,
                               limits=Limits(items=args.sample_items), reference=args.reference))
        elif args.command == "task":
            from flows.taskcli import check_command, list_command

            print(check_command(args.file, allow_unparsed=args.allow_unparsed, data_dir=args.data_dir)
                  if args.task_command == "check" else list_command(args.paths))
        elif args.command == "analyze":
            print(_analyze_nll(args) if args.analysis == "nll" else _analyze_similarity(args))
        sys.stdout.flush()  # a reader gone early (`| head`) shows here, not in Python's flush at exit
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that the flush at exit succeeds
        return EXIT_BROKEN_PIPE
    except REPORTED as exc:
        if args.debug:
            traceback.print_exc()
        print(f"manyshot: error: {message(exc)}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, UsageError) else EXIT_ERROR
    except (KeyboardInterrupt, TerminationSignal) as exc:
        print(f"manyshot: {describe(exc)}", file=sys.stderr)
        return exit_code(exc)
    finally:
        if loud is not None:
            loud()
        if restore is not None:
            restore()
        if data_dir_env is None:  # --data-dir holds for this command only
            os.environ.pop("MANYSHOT_DATA_DIR", None)
        else:
            os.environ["MANYSHOT_DATA_DIR"] = data_dir_env
    return 0


if __name__ == "__main__":
    sys.exit(main())

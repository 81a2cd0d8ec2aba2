"""``manyshot report DIR``: one self-contained HTML file for an eval results folder or an ablation.

The page needs no network: CSS and JavaScript are inline, plots are PNGs embedded as base64 data URIs,
and the sample browser reads JSON embedded in the page. Sections: accuracy vs K (strict and flexible,
95% CIs), the accuracy tables, prompt tokens per K, skipped cells with their reasons, the banks'
provenance, a sample browser (bank, shot selection and order, K, seed, item: question, gold, responses,
extracted answers, verdicts and the shots the result row recorded for the prompt) and any ``analysis-*`` files (see flows/report/inputs.py).
Paired differences (flows/evaluate/paired.py) come from the results folder's ``paired.csv``, or are computed from the
result rows of folders written before it.
"""
from __future__ import annotations

import base64
import html
import io
import json
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import pandas as pd

from flows.evaluate.metrics import LINE, bank_name, line_label, plot, with_zero_shot
from flows.report.inputs import BankInfo, EvalPart, Inputs, label_key, read_inputs
from flows.report.page import BROWSER, page
from flows.report.samples import Limits, eval_samples
from flows.evaluate.paired import HEADER, display_rows, explanation, paired_differences, read_paired, reference_line
from flows.evaluate.kaxis import DPI, FIGSIZE, FONT, draw_line, max_legend_entry, set_k_axis

ANALYSIS_ROWS = 100


def _e(value: object) -> str:
    return html.escape(str(value))


def data_uri(png: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(png).decode()}"


def _figure(uri: str, caption: str) -> str:
    return f'<figure><img src="{uri}" alt="{_e(caption)}"><figcaption>{_e(caption)}</figcaption></figure>'


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], numeric: Sequence[bool] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="num">{_e(c)}</td>' if (numeric[i] if i < len(numeric) else False)
                                    else f"<td>{_e(c)}</td>" for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def frame_table(frame: pd.DataFrame, max_rows: int = ANALYSIS_ROWS) -> str:
    shown = frame.head(max_rows)
    note = f'<p class="muted">first {max_rows} of {len(frame)} rows</p>' if len(frame) > max_rows else ""
    numeric = [pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in shown.dtypes]
    rows = [[round(v, 4) if isinstance(v, float) else v for v in r] for r in shown.itertuples(index=False)]
    return _table(list(shown.columns), rows, numeric) + note


def accuracy_plots(summary: pd.DataFrame, task: str) -> list[str]:
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        for metric in ("strict", "flexible"):
            if summary.empty or metric not in set(summary.get("metric", [])):
                continue
            path = plot(summary, Path(tmp) / f"{metric}.png", title=f"{task}: accuracy vs K ({metric})", metric=metric)
            figures.append(_figure(data_uri(path.read_bytes()), f"{metric} accuracy vs K, 95% CI over items"))
    return figures


def accuracy_table(summary: pd.DataFrame, metric: str) -> str:
    view = with_zero_shot(summary)
    view = view[view["metric"] == metric] if "metric" in view else view.iloc[0:0]
    if view.empty:
        return f'<p class="muted">no {metric} results</p>'
    ks = sorted(view["k_label"].unique(), key=label_key)
    rows = []
    for (bank, select, source, transfer), g in view.groupby(LINE, sort=True):
        cells = {r.k_label: f"{r.accuracy:.1%} ({r.ci_low:.0%}-{r.ci_high:.0%}){_resolved(r)}" for r in g.itertuples()}
        rows.append([line_label(bank, select), f"{source} (transfer)" if transfer else source]
                    + [cells.get(k, "-") for k in ks])
    return _table(["bank", "source", *[f"K={k}" for k in ks]], rows, [False, False, *[True] * len(ks)])


def _resolved(row) -> str:
    """For a label that is not a number (``max``), the K it stood for, a range when seeds differ."""
    if str(row.k_label).isdigit():
        return ""
    low, high = int(getattr(row, "k_min", row.k)), int(getattr(row, "k_max", row.k))
    return f" K={low}" if low == high else f" K={low}-{high}"


def prompt_tokens(results: pd.DataFrame) -> tuple[str, str | None]:
    """A table of mean and max prompt tokens per bank and K, and a plot of the means."""
    if results.empty or "prompt_tokens" not in results:
        return '<p class="muted">no result rows with prompt_tokens</p>', None
    prompts = results.drop_duplicates(["bank", "seed", "k_label", "item_id"]).assign(bank=lambda f: f["bank"].map(bank_name))
    stats = prompts.groupby(["bank", "k_label"]).agg(mean=("prompt_tokens", "mean"), max=("prompt_tokens", "max"),
                                                      k=("k", "mean"), k_min=("k", "min"), k_max=("k", "max"))
    stats = stats.reset_index()
    ks = sorted(stats["k_label"].unique(), key=label_key)
    rows = []
    for bank, g in stats.groupby("bank", sort=True):
        cells = {r.k_label: f"{r.mean:.0f} (max {r.max}){_resolved(r)}" for r in g.itertuples()}
        rows.append([bank] + [cells.get(k, "-") for k in ks])
    table = _table(["bank", *[f"K={k}" for k in ks]], rows, [False, *[True] * len(ks)])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context(FONT):
        fig, ax = plt.subplots(figsize=(FIGSIZE[0], FIGSIZE[1] * 0.8))
        for n, (bank, g) in enumerate(stats.groupby("bank", sort=True)):
            draw_line(ax, g.assign(y=g["mean"]), color=f"C{n % 10}", label=bank, yerr=False)
        set_k_axis(ax, stats)
        ax.set_ylim(0, stats["mean"].max() * 1.15)  # room for the max annotations
        ax.set_ylabel("mean prompt tokens")
        ax.grid(alpha=0.3)
        ax.legend(handles=ax.get_legend_handles_labels()[0] + max_legend_entry("max" in set(ks)),
                  loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return table, _figure(data_uri(buffer.getvalue()), "mean prompt tokens per K")


def paired_section(part: EvalPart, reference: str | None) -> str:
    """Strict paired differences against the reference bank and against zero-shot."""
    stored = part.folder / "paired.csv" if part.folder else None
    if stored is not None and stored.exists():
        paired, note = read_paired(stored), ""
    elif part.results.empty:
        return '<p class="muted">no result rows</p>'
    else:
        paired, note = paired_differences(part.results), " Computed from the random order-0 result rows."
    line = reference_line(paired, reference or part.reference)
    rows = display_rows(paired, line)
    return (f'<p class="muted">{_e(explanation(line) + note)}</p>'
            + (_table(HEADER, rows, [False] * 3 + [True] * 7) if rows else '<p class="muted">no pairs</p>'))


def eval_section(part: EvalPart, n: int, reference: str | None = None) -> str:
    out = [f'<h2 id="eval-{n}">Evaluation on {_e(part.task)}</h2>',
           f'<p class="muted">results folder: {_e(part.folder or "not found")}</p>']
    out += [f'<p class="note">{_e(note)}</p>' for note in part.notes]
    out.append('<div class="plots">' + "".join(accuracy_plots(part.summary, part.task)) + "</div>")
    for metric in ("strict", "flexible"):
        out += [f"<h3>Accuracy ({metric}), mean over seeds, 95% bootstrap CI over items</h3>",
                accuracy_table(part.summary, metric)]
    out += ["<h3>Paired differences (strict)</h3>", paired_section(part, reference)]
    table, figure = prompt_tokens(part.results)
    out += ["<h3>Prompt tokens per K</h3>", table, f'<div class="plots">{figure}</div>' if figure else ""]
    out.append("<h3>Skipped cells</h3>")
    out.append(_table(["bank", "seed", "K", "reason"], [[bank_name(s.bank), s.seed, s.k, s.reason]
                                                        for s in part.skipped])
               if part.skipped else '<p class="muted">none</p>')
    out.append(f"<details><summary>full summary.csv rows ({len(part.summary)})</summary>"
               f"{frame_table(_shown_banks(part.summary), max_rows=1000)}</details>")
    return "\n".join(out)


def _shown_banks(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(bank=frame["bank"].map(bank_name)) if "bank" in frame else frame


def bank_section(info: BankInfo) -> str:
    title = f"{info.label}" + (f" (spec name: {info.name})" if info.name else "")
    if info.table is None:
        return (f"<h3>{_e(title)}</h3><p class=\"note\">bank file not found; looked at: "
                f"{_e(', '.join(info.searched) or 'nowhere')}</p>")
    df = info.table.select([c for c in ("problem_id", "source", "task", "model", "template_id", "verifier_version",
                                        "dataset", "split") if c in info.table.column_names]).to_pandas()
    facts = [["path", info.path], ["shots", len(df)], ["problems", df["problem_id"].nunique()]]
    facts += [[c, ", ".join(sorted(str(v) for v in df[c].dropna().unique())) or "-"] for c in df.columns[1:]]
    facts += [[key, info.metadata.get(key, "-")] for key in ("created_at", "run_id")]
    report = info.metadata.get("report") or {}
    config = json.dumps(info.metadata.get("config", {}), indent=1, sort_keys=True, default=str)
    return (f"<h3>{_e(title)}</h3>" + _table(["field", "value"], facts)
            + (f"<details open><summary>build report</summary>{_table(['metric', 'value'], list(report.items()))}"
               "</details>" if report else "")
            + f"<details><summary>configuration</summary><pre>{_e(config)}</pre></details>")


def analyses_section(paths: Sequence[Path]) -> str:
    if not paths:
        return '<p class="muted">none found (files named analysis-*.png, .svg, .csv, .md or .txt)</p>'
    out = []
    for path in paths:
        out.append(f"<h3>{_e(path.name)}</h3><p class=\"muted\">{_e(path)}</p>")
        suffix = path.suffix.lower()
        if suffix in (".png", ".svg"):
            out.append(_figure(data_uri(path.read_bytes(), "image/png" if suffix == ".png" else "image/svg+xml"),
                               path.name))
        elif suffix == ".csv":
            out.append(frame_table(pd.read_csv(path)))
        else:
            out.append(f"<pre>{_e(path.read_text())}</pre>")
    return "\n".join(out)


def render(inputs: Inputs, *, data_dir: str | None = None, limits: Limits = Limits(),
           reference: str | None = None) -> str:
    samples = {"evals": [eval_samples(p, inputs.banks, limits, data_dir) for p in inputs.evals]}
    models = sorted({str(m) for p in inputs.evals if "model" in p.results for m in p.results["model"].unique()})
    subtitle = (f"{_e(inputs.kind)} folder {_e(inputs.folder)} · model {_e(', '.join(models) or '?')} · "
                f"report written {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}")
    nav = "".join(f'<a href="#eval-{n}">{_e(p.task)}</a>' for n, p in enumerate(inputs.evals))
    nav += '<a href="#samples">samples</a><a href="#banks">banks</a><a href="#analyses">analyses</a>'
    shown = [e for e in samples["evals"] if e["items"]]
    bounds = (f"showing up to {limits.items} items per cell (of {max(e['total_items'] for e in shown)}), "
              f"{limits.samples} samples per item, texts cut at {limits.text} characters" if shown else "")
    reference = next((b.label for b in inputs.banks.values() if reference and b.name == reference), reference)
    body = ["\n".join(eval_section(p, n, reference) for n, p in enumerate(inputs.evals)),
            f'<h2 id="samples">Samples</h2><p class="muted">{_e(bounds)}</p>{BROWSER}',
            '<h2 id="banks">Banks</h2>',
            "\n".join(bank_section(b) for b in inputs.banks.values()) or '<p class="muted">no banks used</p>',
            f'<h2 id="analyses">Analyses</h2>{analyses_section(inputs.analyses)}',
            '<p class="muted">Self-contained: inline CSS and JavaScript, embedded plots; no network needed.</p>']
    return page(_e(f"manyshot report: {inputs.title}"), subtitle, nav, "\n".join(body), samples)


def write_report(folder: Path | str, out: Path | str | None = None, *, data_dir: str | None = None,
                 bank_dirs: Sequence[Path | str] = (), limits: Limits = Limits(), reference: str | None = None) -> Path:
    """Write the HTML report for ``folder`` (default ``<folder>/report.html``) and return its path; paired
    differences are shown against ``reference`` (a bank label or ablation spec name; default: the run's)."""
    inputs = read_inputs(folder, bank_dirs)
    target = Path(out) if out else Path(folder) / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(inputs, data_dir=data_dir, limits=limits, reference=reference), encoding="utf-8")
    return target

"""``manyshot report``: the self-contained HTML report (rendered in headless Chromium) and its Prefect artifacts."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import flows.build.flow as build
import flows.evaluate.flow as evaluate_module
from conftest import DATA_DIR
from flows.ablate import run_ablation
from flows.runtime.banks import read_bank
from flows.build.flow import build_bank
from flows.core.specs import BuildSpec, EvalSpec, Selection
from flows.cli import main
from flows.core.data import load_problems, select
from flows.evaluate.flow import evaluate
from flows.report.html_report import write_report
from flows.report.inputs import read_inputs
from flows.evaluate.prompts import BankView
from flows.evaluate.shot_selection import shot_order
from flows.report.samples import REBUILT, Limits
from flows.core.schema import RESULT_SCHEMA, to_table
from flows.evaluate.paired import PairedError, against, read_paired
from generators.fake import FakeGenerator

pytestmark = pytest.mark.usefixtures("prefect_harness")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def scored_script():
    """Gold answers for some items, wrong or unformatted ones for others; more shots help."""
    answers = {p.question: p.answer for p in load_problems("gsm8k", "test", DATA_DIR)}

    def script(prompt, sample, rng):
        question = prompt[-1]["content"]
        shots = sum(m["role"] == "assistant" for m in prompt)
        roll = int(hashlib.sha256(question.encode()).hexdigest(), 16) % 4
        gold = answers.get(question, "0")
        if roll == 0 and shots < 4:
            return "I think it is 12345.\nThe answer is 12345"
        if roll == 1:
            return f"Counting carefully gives {gold}."  # flexible only
        return f"Step by step.\nThe answer is {gold}"
    return script


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """An eval results folder: a ground-truth and an unsupervised bank, K = 0, 2, 4, two seeds, 5 items."""
    root = tmp_path_factory.mktemp("report")
    gt = build_bank(BuildSpec(mode="ground-truth", selection=Selection(task="gsm8k", limit=8)),
                    data_dir=str(DATA_DIR), out=str(root / "banks"))
    unsup = build_bank(BuildSpec(mode="unsupervised", selection=Selection(task="gsm8k", limit=3)),
                       data_dir=str(DATA_DIR), out=str(root / "banks"))
    spec = EvalSpec(task="gsm8k", banks=(gt, unsup), shots=(0, 2, 4), seeds=2, limit=5, max_tokens=32)
    folder = evaluate(spec, data_dir=str(DATA_DIR), out=str(root / "evals"), generator=FakeGenerator(scored_script())).folder
    items = select(load_problems("gsm8k", "test", DATA_DIR), limit=5, seed=0)
    return Path(folder), Path(gt), Path(unsup), items


def embedded_samples(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="samples-data">(.*?)</script>', page, flags=re.S)
    return json.loads(match[1])


def images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_report_has_plots_tables_skips_provenance_and_exact_shots(results):
    folder, gt, unsup, items = results
    page = write_report(folder, data_dir=str(DATA_DIR)).read_text()
    pngs = images(page)
    assert len(pngs) == 3 and all(p[:8] == b"\x89PNG\r\n\x1a\n" and len(p) > 5000 for p in pngs)  # strict, flexible, tokens
    assert "Accuracy (strict)" in page and "Accuracy (flexible)" in page and "Prompt tokens per K" in page
    assert f"{unsup.stem}</td><td>0</td><td>4</td><td>bank {unsup.stem} has 3 usable shots, fewer than K=4" in page
    assert gt.stem in page and "build report" in page and "ground-truth" in page
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched at view time

    data = embedded_samples(page)["evals"][0]
    assert data["items"] == [p.id for p in items] and data["questions"][items[2].id] == items[2].question
    view = BankView.from_rows(gt.stem, read_bank(gt)[0].to_pylist())
    shots = data["shots"][gt.stem]
    listed = shots["lists"][data["prompt_shots"][f"{gt.stem}-s1-k4"][items[0].id]]
    assert [shots["texts"][i][0] for i in listed] == [s.problem_id for s in shot_order(view, 1)[:4]]
    checks = [v for cell in data["prompt_check"].values() for v in cell.values()]
    assert len(checks) == 5 * (1 + 2 * 2 + 2) and set(checks) == {"matches"}  # rebuilt prompts hash as the run's
    rows = data["rows"][f"{gt.stem}-s1-k4"][items[0].id]
    assert rows[0][1].startswith(("Step by step", "Counting")) and isinstance(rows[0][4], bool)


def test_report_shows_paired_differences_against_the_reference(results, tmp_path):
    folder, gt, unsup, items = results
    page = write_report(folder, tmp_path / "default.html", data_dir=str(DATA_DIR)).read_text()
    assert "Paired differences (strict)" in page and f"reference: {gt.stem}." in page  # ground truth by default
    paired = read_paired(folder / "paired.csv")
    row = against(paired[paired["metric"] == "strict"], gt.stem).iloc[0]  # unsupervised against it at K=2
    cells = (f'<td>2</td><td>{unsup.stem}</td><td>{gt.stem}</td><td class="num">5</td>'
             f'<td class="num">{row.accuracy_a:.1%}</td><td class="num">{row.accuracy_b:.1%}</td>'
             f'<td class="num">{row.difference:+.1%} ({row.ci_low:+.1%} to {row.ci_high:+.1%})</td>')
    assert cells in page
    chosen = write_report(folder, tmp_path / "chosen.html", data_dir=str(DATA_DIR), reference=unsup.stem).read_text()
    assert f"reference: {unsup.stem}." in chosen and f"<td>2</td><td>{gt.stem}</td><td>{unsup.stem}</td>" in chosen
    with pytest.raises(PairedError, match="'nope' is none of the banks"):
        write_report(folder, tmp_path / "bad.html", data_dir=str(DATA_DIR), reference="nope")
    older = tmp_path / "older"  # a results folder from before paired.csv: computed from its result rows
    shutil.copytree(folder, older)
    (older / "paired.csv").unlink()
    page = write_report(older, data_dir=str(DATA_DIR)).read_text()
    assert "Computed from the random order-0 result rows." in page and cells in page


class Dom(HTMLParser):
    """Text per element id, the ids' nesting, and img sources of a dumped DOM."""

    VOID = {"img", "br", "input", "meta", "link", "hr"}

    def __init__(self, text: str):
        super().__init__()
        self.open: list[tuple[str, str | None]] = []
        self.text: dict[str, str] = {}
        self.images: list[str] = []
        self.shot_titles: list[str] = []
        self._in_summary = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src") or "")
        self._in_summary = tag == "summary" and any(i == "sample-shots" for _, i in self.open)
        if tag not in self.VOID:
            self.open.append((tag, attrs.get("id")))
            if attrs.get("id"):
                self.text.setdefault(attrs["id"], "")

    def handle_endtag(self, tag):
        while self.open and self.open.pop()[0] != tag:
            pass
        self._in_summary = False

    def handle_data(self, data):
        for _, element in self.open:
            if element:
                self.text[element] += data
        if self._in_summary:
            self.shot_titles.append(data)


def chromium() -> str | None:
    return os.environ.get("MANYSHOT_CHROMIUM") or next(filter(None, map(shutil.which, BROWSERS)), None)


PROBE = """<script>window.addEventListener('load', function () { setTimeout(function () {
  var p = document.createElement('pre'); p.id = 'probe'; p.textContent = JSON.stringify({y: window.scrollY,
    top: document.getElementById('samples').getBoundingClientRect().top,
    plot: document.querySelector('.plots img').getBoundingClientRect().width});
  document.body.appendChild(p); }, 100); });</script></body>"""


def test_report_renders_in_headless_chromium(results, tmp_path):
    binary = chromium()
    if binary is None:
        pytest.skip("no Chromium found (apt-get install chromium; scripts/setup.sh installs it as root, "
                    f"or set MANYSHOT_CHROMIUM); looked for {', '.join(BROWSERS)}")
    folder, gt, _, items = results
    report = write_report(folder, tmp_path / "report.html", data_dir=str(DATA_DIR))
    probed = tmp_path / "probed.html"  # the report, plus a script that records where the page is scrolled
    probed.write_text(report.read_text().replace("</body>", PROBE))
    link = f"#bank={gt.stem}&k=4&seed=1&item={items[2].id}"
    base = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--window-size=1280,1000"]

    def dom(fragment: str) -> Dom:
        return Dom(subprocess.run([*base, "--dump-dom", probed.resolve().as_uri() + fragment], capture_output=True,
                                  text=True, timeout=240, check=True).stdout)

    page = dom(link)
    assert page.text["sample-question"] == items[2].question  # written by the page's script, from the URL's choice
    assert page.text["sample-gold"] == f"Gold answer: {items[2].answer}"
    view = BankView.from_rows(gt.stem, read_bank(gt)[0].to_pylist())
    assert [t.split(":")[0] for t in page.shot_titles] == [s.problem_id for s in shot_order(view, 1)[:4]]
    assert "prompt hash of the run: matches" in page.text["sample-view"]
    plots = [src for src in page.images if src.startswith("data:image/png;base64,") and len(src) > 5000]
    assert len(plots) == 3
    probe = json.loads(page.text["probe"])
    assert probe["y"] > 0 and abs(probe["top"]) < 2  # the link opens at the sample browser, not at the top
    assert probe["plot"] > 1100  # plots take the content width at 1280 px
    assert page.text["link-notice"] == ""

    wrong = dom(f"#bank={gt.stem}&k=7&seed=1&item={items[2].id}")  # no K=7 in this eval
    assert wrong.text["link-notice"] == ("The link asks for k=7, which this report does not have; showing k=2 "
                                         "instead.")
    assert wrong.text["sample-question"] == items[2].question and "K=2" in wrong.text["sample-view"]
    assert "bank=nope" in dom("#bank=nope&k=0").text["link-notice"]
    zero = dom(f"#bank=none&k=0&seed=0&item={items[1].id}")  # the data label of zero-shot, in older links
    assert zero.text["link-notice"] == "" and "zero-shot, K=0" in zero.text["sample-view"]
    assert "zero-shot" in zero.text["pick-bank"] and "none" not in zero.text["pick-bank"]

    shot = tmp_path / "shot.png"  # the top of the page (headless screenshots of a scrolled page come out blank)
    subprocess.run([*base, f"--screenshot={shot}", report.resolve().as_uri()], capture_output=True,
                   timeout=240, check=True)
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (1000, 1280)
    ink = (pixels < 0.9).any(axis=-1).mean()
    assert 0.05 < ink < 0.9, f"screenshot looks blank or solid: {ink:.1%} non-white pixels"


def test_a_results_folder_carries_its_items_and_reports_without_a_data_dir(results, tmp_path, monkeypatch, capsys):
    folder, _, _, items = results
    stored = pq.read_table(folder / "items.parquet").to_pylist()
    assert stored == [{"item_id": p.id, "question": p.question, "gold": p.answer, "subject": p.subject}
                      for p in items]
    mailed = tmp_path / "mailed"  # moved away from its banks and the datasets
    shutil.copytree(folder, mailed)
    monkeypatch.delenv("MANYSHOT_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)  # no ./data here
    assert main(["report", str(mailed)]) == 0
    data = embedded_samples((mailed / "report.html").read_text())["evals"][0]
    assert data["questions"] == {p.id: p.question for p in items}
    assert set(data["prompt_check"]["none-s0-k0"].values()) == {"matches"}  # zero-shot prompts need no bank

    (mailed / "items.parquet").unlink()  # a folder from before items.parquet: the data dir is needed again
    assert main(["report", str(mailed)]) == 1
    assert "no data dir given" in capsys.readouterr().err
    assert main(["report", str(mailed), "--data-dir", str(DATA_DIR)]) == 0
    data = embedded_samples((mailed / "report.html").read_text())["evals"][0]
    assert data["questions"] == {p.id: p.question for p in items}


def test_ablation_report_finds_moved_banks_and_says_when_one_is_missing(tmp_path, monkeypatch):
    gen = FakeGenerator(scored_script())
    monkeypatch.setattr(build, "load_generator", lambda *a, **k: gen)
    monkeypatch.setattr(evaluate_module, "load_generator", lambda *a, **k: gen)
    config = tmp_path / "small.toml"
    config.write_text('shots = [0, 2, "max"]\nlimit = 3\nmax_tokens = 32\n[[banks]]\nname = "gt"\nmode = "ground-truth"\n'
                      'task = "gsm8k"\nlimit = 4\n[[evals]]\ntask = "gsm8k"\n')
    target = Path(run_ablation(str(config), data_dir=str(DATA_DIR), out=str(tmp_path / "runs")))
    (target / "analysis-similarity.csv").write_text("bank,similarity\ngt,0.42\n")
    shutil.move(tmp_path / "runs", tmp_path / "moved")  # summary.md now names paths that do not exist
    moved = tmp_path / "moved" / target.name
    page = write_report(moved, data_dir=str(DATA_DIR)).read_text()
    data = embedded_samples(page)["evals"][0]
    label = next(iter(data["shots"]))
    assert label.startswith("gsm8k-ground-truth-") and data["shots"][label]["status"] == "found"
    assert len(data["items"]) == 3 and {(c["label"], c["k"]) for c in data["cells"]} == {("0", 0), ("2", 2), ("max", 4)}
    assert set(data["prompt_check"][f"{label}-s0-kmax"].values()) == {"matches"}  # the max cell's 4 shots
    assert "<th>K=max</th>" in page and re.search(r"\(\d+%-\d+%\) K=4</td>", page)
    assert "spec name: gt" in page and "analysis-similarity.csv" in page and '<td class="num">0.42</td>' in page

    (tmp_path / "moved" / "banks" / f"{label}.parquet").unlink()
    page = write_report(moved, data_dir=str(DATA_DIR)).read_text()
    assert "bank file not found; looked at:" in page
    assert embedded_samples(page)["evals"][0]["shots"][label]["status"].startswith("bank file not found")


@pytest.fixture(scope="module")
def selected(tmp_path_factory):
    """An eval with the similar selection beside random, each in two orders: K = 0, 2, 3, 3 items."""
    root = tmp_path_factory.mktemp("selected")
    bank = build_bank(BuildSpec(mode="ground-truth", selection=Selection(task="gsm8k", limit=8)),
                      data_dir=str(DATA_DIR), out=str(root / "banks"))
    spec = EvalSpec(task="gsm8k", banks=(bank,), shots=(0, 2, 3), limit=3, max_tokens=32,
                    select=("random", "similar"), orders=2, embedder="tfidf")
    with pytest.warns(UserWarning, match="TF-IDF"):
        folder = evaluate(spec, data_dir=str(DATA_DIR), out=str(root / "evals"),
                          generator=FakeGenerator(scored_script())).folder
    table = read_bank(bank)[0]
    problem_of = dict(zip(table.column("shot_id").to_pylist(), table.column("problem_id").to_pylist()))
    return Path(folder), Path(bank).stem, problem_of


def recorded(folder: Path, bank: str, select: str, order: int, k: int) -> dict[str, list[str]]:
    """Item -> the shot ids its prompt had in that cell, as the result rows record them."""
    rows = pd.read_parquet(folder / "results.parquet")
    cell = rows[(rows["bank"] == bank) & (rows["select"] == select) & (rows["order"] == order) & (rows["k"] == k)]
    return {r.item_id: list(r.shot_ids) for r in cell.drop_duplicates("item_id").itertuples()}


def test_samples_cover_every_selection_and_order_with_the_shots_the_rows_recorded(selected):
    folder, bank, problem_of = selected
    page = write_report(folder, data_dir=str(DATA_DIR)).read_text()
    data = embedded_samples(page)["evals"][0]
    lines = {(c["bank"], c["selection"]) for c in data["cells"]}
    assert lines == {("zero-shot", "random"), (bank, "random"), (bank, "random, order 1"), (bank, "similar/tfidf"),
                     (bank, "similar/tfidf, order 1")}
    assert len(data["cells"]) == 1 + 4 * 2 and "[similar/tfidf]" in page
    shots = data["shots"][bank]
    for cell in data["cells"]:
        if cell["k"] == 0:
            continue
        select, _, order = cell["selection"].partition(", order ")
        ids = recorded(folder, bank, select, int(order or 0), cell["k"])
        assert set(data["prompt_check"][cell["key"]].values()) == {"matches"}
        for item, listed in data["prompt_shots"][cell["key"]].items():
            assert [shots["texts"][i][0] for i in shots["lists"][listed]] == [problem_of[i] for i in ids[item]]
    assert data["prompt_shots"][f"{bank}-s0-similar-tfidf-o1-k3"].keys() == set(data["items"])
    similar = recorded(folder, bank, "similar/tfidf", 1, 3)
    assert len({tuple(v) for v in similar.values()}) == 3  # a prompt per question, each shown as its row has it
    assert similar != recorded(folder, bank, "similar/tfidf", 0, 3)  # order 1 permutes order 0's shots


def test_the_page_shows_a_similar_order_one_sample_labelled_with_its_recorded_shots(selected, tmp_path):
    binary = chromium()
    if binary is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set MANYSHOT_CHROMIUM)")
    folder, bank, problem_of = selected
    report = write_report(folder, tmp_path / "report.html", data_dir=str(DATA_DIR))
    ids = recorded(folder, bank, "similar/tfidf", 1, 3)
    item = sorted(ids)[1]
    link = f"#bank={bank}&selection=similar%2Ftfidf%2C%20order%201&k=3&seed=0&item={item}"
    page = Dom(subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                               f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
                               report.resolve().as_uri() + link],
                              capture_output=True, text=True, timeout=240, check=True).stdout)
    assert page.text["link-notice"] == ""
    assert page.text["sample-title"] == f"Item {item} \u2014 {bank} (similar/tfidf, order 1), K=3, seed 0"
    assert [t.split(":")[0] for t in page.shot_titles] == [problem_of[i] for i in ids[item]]
    assert "prompt hash of the run: matches" in page.text["sample-view"]
    assert "similar/tfidf, order 1" in page.text["pick-selection"]


def test_an_ablation_from_before_run_folders_reads_every_selections_cell_files(selected, tmp_path):
    folder, bank, _ = selected
    ablation = tmp_path / "ablation-old"  # it names the eval folder, whose cells/ hold every selection and order
    ablation.mkdir()
    pd.read_csv(folder / "summary.csv").assign(eval_task="gsm8k").to_csv(ablation / "summary.csv", index=False)
    (ablation / "summary.md").write_text(f"# old\n\n## eval on gsm8k\n\nresults: {folder.parent.parent}\n")
    part = read_inputs(ablation).evals[0]
    rows = pd.read_parquet(folder / "results.parquet")
    assert len(part.all_rows) == len(rows) and len(part.results) == len(rows[(rows["select"] == "random")
                                                                             & (rows["order"] == 0)])
    assert set(zip(part.all_rows["select"], part.all_rows["order"])) == {("random", 0), ("random", 1),
                                                                         ("similar/tfidf", 0), ("similar/tfidf", 1)}


def test_report_of_a_200_item_30_cell_grid_stays_small(tmp_path):
    items = select(load_problems("gsm8k", "test", DATA_DIR), limit=200, seed=0)
    cells = [(f"gsm8k-ground-truth-b{b}", k) for b in range(6) for k in (2, 4, 8, 16, 32)]
    rows = [{"run_id": "r", "task": "gsm8k", "bank": bank, "source": "ground-truth", "transfer": False, "k": k,
             "seed": 0, "item_id": p.id, "sample": 0, "prompt_hash": "h", "prompt_tokens": 100 * k,
             "response": "long reasoning " * 300, "gold": p.answer, "extracted_strict": p.answer,
             "extracted_flexible": p.answer, "correct_strict": True, "correct_flexible": True, "method": "exact",
             "model": "fake", "created_at": pd.Timestamp("2026-01-01", tz="UTC")} for bank, k in cells for p in items]
    folder = tmp_path / "gsm8k-grid"
    folder.mkdir()
    pq.write_table(to_table(rows, RESULT_SCHEMA), folder / "results.parquet")
    pd.DataFrame([{"bank": b, "source": "ground-truth", "transfer": False, "k": k, "metric": m, "items": 200,
                   "seeds": 1, "accuracy": 0.5, "ci_low": 0.4, "ci_high": 0.6} for b, k in cells
                  for m in ("strict", "flexible")]).to_csv(folder / "summary.csv", index=False)
    (folder / "summary.md").write_text("skipped gsm8k-ground-truth-b0-s0-k64: K=64 needs up to 9000 prompt tokens\n")
    report = write_report(folder, data_dir=str(DATA_DIR), limits=Limits(items=40))
    size = report.stat().st_size
    assert 100_000 < size < 3_000_000, size
    data = embedded_samples(report.read_text())["evals"][0]
    assert len(data["items"]) == 40 and data["total_items"] == 200
    response = data["rows"]["gsm8k-ground-truth-b3-s0-k8"][items[5].id][0][1]
    assert len(response) < 1600 and response.endswith("more characters]")
    assert data["shots"]["gsm8k-ground-truth-b0"]["status"].startswith("bank file not found")
    assert "K=64 needs up to 9000 prompt tokens" in report.read_text()


def test_publish_report_artifacts_shows_summary_plot_and_link(results, tmp_path):
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.report.artifacts import artifact_key, publish_report_artifacts

    folder = results[0]
    report = write_report(folder, tmp_path / "report.html", data_dir=str(DATA_DIR))

    @flow
    def publish():
        publish_report_artifacts(folder, report)

    publish()
    key = artifact_key(folder)
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[f"{key}-summary", f"{key}-report"])))
    by_key = {a.key: a for a in found}
    markdown, link = by_key[f"{key}-summary"], by_key[f"{key}-report"]
    assert markdown.flow_run_id is not None and link.flow_run_id == markdown.flow_run_id
    assert link.data == f"[HTML report: {report.resolve()}]({report.resolve().as_uri()})"  # Prefect stores links as markdown
    assert "strict:" in markdown.data and "| K=0 |" in markdown.data.replace(" | K=2", "")
    image = re.search(r"!\[accuracy\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown.data)
    assert image and base64.b64decode(image[1])[:4] == b"\x89PNG"
    assert report.resolve().as_uri() in markdown.data


def test_cli_report_writes_the_file_and_names_a_wrong_folder(results, tmp_path, capsys):
    out = tmp_path / "cli.html"
    assert main(["report", str(results[0]), "--out", str(out), "--data-dir", str(DATA_DIR),
                 "--sample-items", "2"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert len(embedded_samples(out.read_text())["evals"][0]["items"]) == 2
    assert main(["report", str(tmp_path)]) == 1
    assert f"{tmp_path} is neither an eval results folder" in capsys.readouterr().err


def test_rows_from_older_results_without_k_label_still_render(results, tmp_path):
    folder = tmp_path / "old"
    shutil.copytree(results[0], folder)
    table = pq.read_table(folder / "results.parquet")
    if "k_label" in table.column_names:
        pq.write_table(table.drop_columns(["k_label"]), folder / "results.parquet")
    summary = pd.read_csv(folder / "summary.csv")
    summary.drop(columns=[c for c in ("k_label", "k_min", "k_max") if c in summary]).to_csv(folder / "summary.csv",
                                                                                          index=False)
    data = embedded_samples(write_report(folder, data_dir=str(DATA_DIR)).read_text())["evals"][0]
    assert {c["label"] for c in data["cells"]} == {"0", "2", "4"}


def test_rows_from_before_shot_ids_have_their_shots_rebuilt_and_say_so(results, tmp_path):
    """An older folder (no shot_ids): random order-0 prompts are rebuilt as the eval made them, hash as the rows'
    prompt_hash, list the same shots as the recorded rows do, and say they were rebuilt."""
    recorded = embedded_samples(write_report(results[0], data_dir=str(DATA_DIR), bank_dirs=[results[1].parent])
                                .read_text())["evals"][0]
    folder = tmp_path / "before-shot-ids"
    shutil.copytree(results[0], folder)
    rows = pd.read_parquet(folder / "results.parquet")
    rows["shot_ids"] = None
    rows.to_parquet(folder / "results.parquet", index=False)
    data = embedded_samples(write_report(folder, data_dir=str(DATA_DIR), bank_dirs=[results[1].parent])
                            .read_text())["evals"][0]
    cell = f"{results[1].stem}-s1-k4"
    assert set(data["prompt_check"][cell].values()) == {"matches" + REBUILT}
    bank = results[1].stem

    def problems(d):  # each item's prompt as the problem ids of its shots, in prompt order
        shots = d["shots"][bank]
        return [[shots["texts"][i][0] for i in shots["lists"][n]] for n in d["prompt_shots"][cell].values()]

    assert problems(data) == problems(recorded) and all(len(shots) == 4 for shots in problems(data))
    assert set(data["prompt_check"]["none-s0-k0"].values()) == {"matches"}  # zero-shot prompts have no shots



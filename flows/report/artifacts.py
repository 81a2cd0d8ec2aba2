"""Publish a results folder's summary, plots and HTML report link as Prefect artifacts.

Call at the end of a flow run (``run_ablation``, ``evaluate``'s ``finish``) so the Prefect UI's
Artifacts page and the flow run's Artifacts tab show the results:
``publish_report_artifacts(folder, write_report(folder, data_dir=data_dir))``.
"""
from __future__ import annotations

import re
from pathlib import Path

from prefect.artifacts import create_link_artifact, create_markdown_artifact

from flows.report.html_report import data_uri


def artifact_key(folder: Path) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", folder.resolve().name.lower())).strip("-") or "results"


def summary_markdown(folder: Path, report: Path) -> str:
    """``summary.md`` with its plot links replaced by the embedded images, and the report's path."""
    folder = Path(folder)
    text = (folder / "summary.md").read_text()

    def embed(match: re.Match) -> str:
        image = folder / match[2]
        return f"![{match[1]}]({data_uri(image.read_bytes())})" if image.is_file() else match[0]

    text = re.sub(r"!\[([^\]]*)\]\(([^)\s:]+\.png)\)", embed, text)
    plots = sorted(folder.glob("accuracy*.png"))
    if "](data:image" not in text:
        text += "".join(f"\n\n![{p.stem}]({data_uri(p.read_bytes())})" for p in plots)
    return f"{text}\n\nHTML report (self-contained): [{report.name}]({report.resolve().as_uri()}) at `{report.resolve()}`\n"


def publish_report_artifacts(folder: Path | str, report: Path | str) -> None:
    """A markdown artifact (summary with embedded plots) and a link artifact to the HTML report."""
    folder, report = Path(folder), Path(report)
    key = artifact_key(folder)
    create_markdown_artifact(markdown=summary_markdown(folder, report), key=f"{key}-summary",
                             description=f"summary of {folder}")
    create_link_artifact(link=report.resolve().as_uri(), link_text=f"HTML report: {report.resolve()}",
                         key=f"{key}-report", description=f"self-contained HTML report of {folder}")

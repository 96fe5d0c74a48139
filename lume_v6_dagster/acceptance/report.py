"""The acceptance report: Markdown, and HTML rendered from it by Python-Markdown."""

from pathlib import Path

import markdown as markdown_lib

from lume_v6_dagster.acceptance.champion import Comparison
from lume_v6_dagster.acceptance.gates import Gate, decision, table
from lume_v6_dagster.acceptance.markup import escape
from lume_v6_dagster.atomic_files import atomic_path


def _decided(use_v6: bool, comparison: Comparison) -> str:
    if use_v6:
        return "every automatic gate passes and V6 is no worse than the champion; V6 models are enabled in the bundle."
    if comparison.blocks:
        return (f"tonight's V6 is not shipped ({comparison.state}: {escape(comparison.reason)}); the bundle keeps "
                f"`useV6Models: false` and the app keeps the champion's bundle `{comparison.champion['bundle']}`.")
    return "an automatic gate fails; the bundle keeps the V5 fallback (`useV6Models: false`)."


def markdown(gates: list[Gate], comparison: Comparison, plots: dict[str, Path], provenance: dict, metrics: dict,
             excluded: dict[str, str], sections: dict[str, str], overrides: dict[str, dict]) -> str:
    """The report; `sections` (title -> Markdown) follow the gate table; `overrides`: thresholds changed from their defaults."""
    status, use_v6 = decision(gates, comparison.blocks)
    relaxed = "; ".join(f"`{k}` {v['value']} (default {v['default']})" for k, v in overrides.items())
    lines = ["# LUME Music V6: acceptance report", "", f"**Status: {status}** (`useV6Models`: {str(use_v6).lower()})", "",
             f"Thresholds changed from their defaults (thresholds.json): {relaxed or 'none'}.", "",
             "## Gates", "", table(gates), ""]
    for title, body in sections.items():
        lines += [f"## {title}", "", body, ""]
    lines += ["## Excluded tracks", ""]
    lines += [f"- `{track}`: {reason}" for track, reason in sorted(excluded.items())] or ["None: every track with a capture was trained or validated on."]
    lines += ["", "## Plots", ""]
    lines += [f"### {title}\n\n![{title}]({Path(p).name})\n" for title, p in plots.items()]
    lines += ["## Metrics", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()]
    lines += ["", "## Promotion decision", "", f"**{status}**: " + _decided(use_v6, comparison), ""]
    lines += [f"- {k}: `{v}`" for k, v in provenance.items()]
    return "\n".join(lines) + "\n"


STYLE = "body{font-family:-apple-system,Helvetica,sans-serif;max-width:1100px;margin:2em auto;color:#222}" \
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}" \
        "img{max-width:640px;display:block;margin:0.5em 0}td img{max-width:360px}pre{background:#f4f4f4;padding:8px}"


def write(out_dir: Path, gates: list[Gate], comparison: Comparison, plots: dict[str, Path], provenance: dict, metrics: dict,
          excluded: dict[str, str], sections: dict[str, str], overrides: dict[str, dict]) -> tuple[Path, Path]:
    """Write report.md and report.html beside their plots and clips: the folder is the report,
    and its relative links keep working wherever it is copied."""
    md = markdown(gates, comparison, plots, provenance, metrics, excluded, sections, overrides)
    with atomic_path(out_dir / "report.md") as tmp:
        tmp.write_text(md)
    body = markdown_lib.markdown(md, extensions=["tables", "fenced_code"])
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>LUME V6 acceptance</title><style>{STYLE}</style></head><body>{body}</body></html>"
    with atomic_path(out_dir / "report.html") as tmp:
        tmp.write_text(page)
    return out_dir / "report.md", out_dir / "report.html"

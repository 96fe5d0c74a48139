"""The acceptance report: Markdown and a self-contained HTML page (plots inlined)."""

import base64
import html
import re
from pathlib import Path

from lume_v6_dagster.acceptance.gates import Gate, decision, table
from lume_v6_dagster.atomic_files import atomic_path


def markdown(gates: list[Gate], plots: dict[str, Path], provenance: dict, metrics: dict, excluded: dict[str, str],
             sections: dict[str, str]) -> str:
    """The report; `sections` (title -> Markdown) follow the gate table."""
    status, use_v6 = decision(gates)
    lines = ["# LUME Music V6: acceptance report", "", f"**Status: {status}** (`useV6Models`: {str(use_v6).lower()})", "",
             "## Gates", "", table(gates), ""]
    for title, body in sections.items():
        lines += [f"## {title}", "", body, ""]
    lines += ["## Excluded tracks", ""]
    lines += [f"- `{track}`: {reason}" for track, reason in sorted(excluded.items())] or ["None: every track with a capture was trained or validated on."]
    lines += ["", "## Plots", ""]
    lines += [f"### {title}\n\n![{title}]({Path(p).name})\n" for title, p in plots.items()]
    lines += ["## Metrics", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()]
    lines += ["", "## Promotion decision", "", f"**{status}**: " + (
        "every automatic gate passes; V6 models are enabled in the bundle." if use_v6 else
        "an automatic gate fails; the bundle keeps the V5 fallback (`useV6Models: false`)."), ""]
    lines += [f"- {k}: `{v}`" for k, v in provenance.items()]
    return "\n".join(lines) + "\n"


def _inline(md: str, plots: dict[str, Path]) -> str:
    """Minimal Markdown -> HTML for this report's shapes: headings, tables, images, lists."""
    out, in_table = [], False
    images = {Path(p).name: base64.b64encode(Path(p).read_bytes()).decode() for p in plots.values()}
    for line in md.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set("".join(cells)) <= set("-"):
                continue
            tag = "th" if not in_table else "td"
            out.append(("<table>" if not in_table else "") + "<tr>" + "".join(f"<{tag}>{_md_inline(c)}</{tag}>" for c in cells) + "</tr>")
            in_table = True
            continue
        if in_table:
            out.append("</table>")
            in_table = False
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{html.escape(line.lstrip('# '))}</h{level}>")
        elif line.startswith("![") and "](" in line:
            name = line.split("](", 1)[1].rstrip(")")
            out.append(f'<img alt="{html.escape(name)}" src="data:image/png;base64,{images[name]}">')
        elif line.startswith("- "):
            out.append(f"<li>{_md_inline(line[2:])}</li>")
        elif line.strip():
            out.append(f"<p>{_md_inline(line)}</p>")
    return "\n".join(out + (["</table>"] if in_table else []))


def _md_inline(text: str) -> str:
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


STYLE = "body{font-family:-apple-system,Helvetica,sans-serif;max-width:1100px;margin:2em auto;color:#222}" \
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}" \
        "img{max-width:640px;display:block;margin:0.5em 0}"


def write(out_dir: Path, gates: list[Gate], plots: dict[str, Path], provenance: dict, metrics: dict,
          excluded: dict[str, str], sections: dict[str, str]) -> tuple[Path, Path]:
    """Write report.md (plots beside it) and report.html (self-contained)."""
    md = markdown(gates, plots, provenance, metrics, excluded, sections)
    with atomic_path(out_dir / "report.md") as tmp:
        tmp.write_text(md)
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>LUME V6 acceptance</title><style>{STYLE}</style></head><body>{_inline(md, plots)}</body></html>"
    with atomic_path(out_dir / "report.html") as tmp:
        tmp.write_text(page)
    return out_dir / "report.md", out_dir / "report.html"

"""What every report page shares: the page template, the navigation, captions, and offline plotly.

Pages load plotly.js from `plotly.min.js` written once beside them (plotly's own "directory" mode),
so the reports open from disk with no network and the 4.8 MB library is stored once, not per page.
Every chart goes through `figure_html`, which refuses a figure without axis titles (where it has
axes) and always puts its one-sentence caption under it.
"""
import html
import json
import os
from pathlib import Path

import plotly.graph_objects as go
import plotly.offline

from common.io import atomic_write_text

# the pages every report links to: (RunPaths property, title)
NAV = (("index_html", "Overview & feature dashboard"),
       ("compare_html", "SAEs compared"),
       ("heatmap_html", "Logic circuit map"),
       ("distributions_html", "Activation distributions"),
       ("sankey_html", "Circuit flow (Sankey)"),
       ("probe_html", "Probe an input"),
       ("training_html", "Training history"),
       ("trace_xlsx", "Per-sample trace (Excel)"),
       ("features_csv", "features.csv"),
       ("neurons_csv", "neurons.csv"))
PLOT_CONFIG = {"displaylogo": False, "responsive": True,
               "modeBarButtonsToRemove": ["sendDataToCloud"], "toImageButtonOptions": {"format": "png"}}
FONT = dict(family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size=13)

CSS = """
:root { --fg:#1d2330; --muted:#5b6577; --line:#d9dee7; --bg:#f6f7fa; --card:#fff; --accent:#2f5fd0; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--fg); background:var(--bg); }
header { background:#1d2330; color:#fff; padding:10px 24px; }
header h1 { margin:0 0 4px; font-size:20px; }
header nav a { color:#cfd8ff; margin-right:16px; text-decoration:none; white-space:nowrap; }
header nav a.here { color:#fff; font-weight:600; border-bottom:2px solid #fff; }
main { padding:16px 24px 40px; max-width:1500px; }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:14px 18px; margin:0 0 18px; }
h2 { font-size:17px; margin:0 0 8px; }
p.caption { color:var(--muted); margin:4px 0 0; font-size:13px; }
p.note { color:var(--muted); }
table.metrics { border-collapse:collapse; margin:4px 0 8px; }
table.metrics th, table.metrics td { border:1px solid var(--line); padding:3px 10px; text-align:center; }
table.metrics th { background:#eef1f6; font-weight:600; }
table.metrics td.name { text-align:left; }
.missing { color:#a05a00; }
.plot { width:100%; }
footer.provenance { color: #8a94a6; font-size: 11px; margin: 24px 16px; font-family: monospace; }
"""


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def plotly_js_missing(paths) -> str | None:
    """The text of plotly.js when `paths.plotly_js` does not hold it yet (None when it does); the pages
    load it from beside them, by relative path (works from file://)."""
    path = paths.plotly_js
    js = plotly.offline.get_plotlyjs()
    return js if not path.is_file() or path.stat().st_size != len(js.encode("utf-8")) else None


def write_plotly_js(paths) -> Path:
    """plotly.js, beside the pages, atomically, when not there yet."""
    js = plotly_js_missing(paths)
    if js is not None:
        atomic_write_text(paths.plotly_js, js)
    return paths.plotly_js


def _check_axes(fig: go.Figure, name: str) -> None:
    """Every drawn cartesian axis must say what it shows."""
    layout = fig.layout.to_plotly_json()
    axes = [k for k in layout if k.startswith(("xaxis", "yaxis"))]
    if any(t.type in ("histogram", "bar", "scatter", "heatmap", "box", "violin") for t in fig.data) and not axes:
        raise ValueError(f"chart {name!r}: no axis titles set")
    for key in axes:
        axis = fig.layout[key]
        if axis.visible is not False and not (axis.title and axis.title.text):
            raise ValueError(f"chart {name!r}: {key} has no title")


def figure_html(fig: go.Figure, div_id: str, caption: str, height: int | None = None) -> str:
    """One chart as an HTML fragment: the plotly div (library loaded once by the page) and its caption."""
    if not caption or not caption.strip():
        raise ValueError(f"chart {div_id!r}: a caption is required")
    _check_axes(fig, div_id)
    fig.update_layout(font=FONT, template="plotly_white")
    if height:
        fig.update_layout(height=height)
    div = fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=PLOT_CONFIG)
    return f'<div class="plot">{div}</div>\n<p class="caption">{esc(caption)}</p>'


def section(title: str, *parts: str, anchor: str | None = None) -> str:
    a = f' id="sec-{esc(anchor)}"' if anchor else ""   # prefixed: never the id of a plot div inside it
    return f"<section{a}><h2>{esc(title)}</h2>\n" + "\n".join(parts) + "\n</section>"


def nav_target(paths, prop: str) -> str:
    """The link from this SAE's report folder to one of NAV's files (compare.html is one folder up from
    a named SAE's reports)."""
    return Path(os.path.relpath(getattr(paths, prop), paths.reports_dir)).as_posix()


def _document(title: str, head: str, header: str, body: str, footer: str) -> str:
    """The one HTML skeleton of every page: `head` (scripts) in <head>, `header` inside <header>."""
    foot = f'<footer class="provenance">{esc(footer)}</footer>' if footer else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{CSS}</style>
{head}
</head><body>
<header>{header}</header>
<main>
{body}
</main>
{foot}
</body></html>
"""


def page(paths, here: str, title: str, body: str, subtitle: str = "", head_extra: str = "",
         with_plotly: bool = True, footer: str = "") -> str:
    """A complete page: header with the run's name and links to every report, then `body`, then
    `footer` (what the page was made from: `common.provenance.footer`)."""
    links = []
    for prop, label in NAV:
        target = nav_target(paths, prop)
        cls = ' class="here"' if prop == here else ""
        links.append(f'<a href="{esc(target)}"{cls}>{esc(label)}</a>')
    script = f'<script src="{esc(paths.plotly_js.name)}"></script>' if with_plotly else ""
    sub = f'<div style="color:#aab4c8;font-size:12px">{esc(subtitle)}</div>' if subtitle else ""
    return _document(title, f"{script}\n{head_extra}", f"<h1>{esc(title)}</h1>{sub}<nav>{''.join(links)}</nav>",
                     body, footer)


def standalone_page(title: str, body: str, footer: str = "") -> str:
    """A page that stands alone (plotly.js inline, no navigation), for outputs that live outside a run's
    reports folder: a sweep's frontier, a benchmark's chart. It opens offline from anywhere."""
    return _document(title, f"<script>{plotly.offline.get_plotlyjs()}</script>", f"<h1>{esc(title)}</h1>", body, footer)


def json_for_script(obj) -> str:
    """JSON safe to put inside a <script> element."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def fmt(v, digits: int = 3) -> str:
    """A metric for display: ints with separators, floats to `digits` significant decimals; absent: a dash."""
    if v is None or (isinstance(v, float) and v != v):
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
            return f"{v:.{digits}g}"
        return f"{v:.{digits}f}".rstrip("0").rstrip(".")
    return str(v)


def pct(v) -> str:
    """A share as a percentage; absent or not a number (a hand-edited metrics.json): a dash."""
    return f"{100 * v:.1f}%" if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v else "—"

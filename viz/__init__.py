"""Stage 6's reports: offline HTML pages (plotly, embedded from one local plotly.min.js) and the
per-sample Excel trace. `viz.build.gather` computes what the pages draw; each module writes a page."""

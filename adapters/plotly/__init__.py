"""Plotly adapters: the report's charts (`figures`) and its self-contained HTML page
(`report_page`), drawn from a `finops_core.report.Report`."""

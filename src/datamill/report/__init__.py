"""The dataset report: one self-contained offline HTML file, and a terminal summary."""

from datamill.report.collect import ReportData, collect
from datamill.report.html import render_html, write_report

__all__ = ["ReportData", "collect", "render_html", "write_report"]

"""Reports: result records, Markdown / HTML / JSON / CSV renderers and the plots."""

from hwsim.report.data import (
    ExactnessRow,
    LayerStats,
    ReportData,
    layer_rows,
    summary,
    to_csv,
    to_json_dict,
)
from hwsim.report.render import (
    FORMATS,
    exactness_text,
    summary_text,
    table_text,
    to_html,
    to_markdown,
    write_report,
)

__all__ = [
    "FORMATS",
    "ExactnessRow",
    "LayerStats",
    "ReportData",
    "exactness_text",
    "layer_rows",
    "summary",
    "summary_text",
    "table_text",
    "to_csv",
    "to_html",
    "to_json_dict",
    "to_markdown",
    "write_report",
]

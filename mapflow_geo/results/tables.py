"""Cost and stats tables that read well: pandas ``Styler`` for notebooks, Markdown and
CSV for reports.

The numbers stay numbers (CSV gets them unrounded); only what is shown is formatted:
areas to two decimals, credits and counts as whole numbers with thousands separators,
coverage as a percentage. Totals are never a row of the table (the caption gives them).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

_FORMATS = ("styler", "markdown", "html", "csv")


def _formatter(column: str) -> Callable[[Any], str]:
    def wrap(fn: Callable[[float], str]) -> Callable[[Any], str]:
        def f(v: Any) -> str:
            if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
                return "—"
            try:
                return fn(float(v))
            except (TypeError, ValueError):
                return str(v)

        return f

    if column == "coverage":
        return wrap(lambda v: f"{v:.1%}")
    if (
        column.endswith("_credits")
        or column.startswith("count:")
        or column
        in (
            "processings",
            "objects",
            "cost",
            "estimate",
        )
    ):
        return wrap(lambda v: f"{v:,.0f}")
    if column.startswith("area_m2:"):
        return wrap(lambda v: f"{v:,.0f}")
    if column.endswith("_km2") or column.endswith("per_km2"):
        return wrap(lambda v: f"{v:,.2f}")
    return wrap(lambda v: f"{v:,.3g}" if not float(v).is_integer() else f"{v:,.0f}")


def _header(column: str) -> str:
    names = {
        "area_km2": "area, km²",
        "processings": "processings",
        "estimated_credits": "estimated credits",
        "charged_credits": "charged credits",
        "charged_earlier_credits": "charged earlier",
        "objects_per_km2": "objects per km²",
    }
    if column in names:
        return names[column]
    if column.startswith("count:"):
        return column[6:]
    if column.startswith("area_m2:"):
        return f"{column[8:]}, m²"
    return column


def formatted(df: pd.DataFrame) -> pd.DataFrame:
    """The table as display strings (numbers formatted, readable headers)."""
    out = pd.DataFrame(
        {_header(c): df[c].map(_formatter(str(c))) for c in df.columns}, index=df.index
    )
    out.index = out.index.map(str)
    return out


def styled(df: pd.DataFrame, *, caption: str | None = None) -> Any:
    """A pandas ``Styler``: formatted numbers, readable headers, numbers right-aligned,
    coverage as a bar."""
    sty = df.style.format({c: _formatter(str(c)) for c in df.columns})
    sty = sty.format_index(lambda c: _header(str(c)), axis=1)
    sty = sty.set_properties(**{"text-align": "right"})
    sty = sty.set_table_styles(
        [
            {"selector": "th", "props": "text-align: right; padding: 2px 8px;"},
            {"selector": "td", "props": "padding: 2px 8px;"},
            {"selector": "caption", "props": "caption-side: top; font-weight: bold;"},
        ]
    )
    if "coverage" in df.columns and df["coverage"].notna().any():
        sty = sty.bar(subset=["coverage"], vmin=0, vmax=1, color="#a6d96a")
    if caption:
        sty = sty.set_caption(caption)
    return sty


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (formatted numbers, right-aligned), with no
    extra dependency.

    Examples
    --------
    >>> print(to_markdown(pd.DataFrame({"area_km2": [1.5]}, index=pd.Index([0], name="row"))))
    | row | area, km² |
    | --: | --: |
    | 0 | 1.50 |
    """
    f = formatted(df)
    index_name = str(df.index.name) if df.index.name is not None else ""
    header = [index_name, *map(str, f.columns)]

    def esc(s: Any) -> str:
        return str(s).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(esc(h) for h in header) + " |",
        "| " + " | ".join("--:" for _ in header) + " |",
    ]
    for idx, row in f.iterrows():
        cells = [esc(idx), *map(esc, row.tolist())]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def present(
    df: pd.DataFrame,
    fmt: str = "styler",
    path: str | Path | None = None,
    *,
    caption: str | None = None,
) -> Any:
    """The table as a ``Styler`` (``"styler"``), Markdown, HTML or CSV text; written to
    ``path`` as well when given (CSV keeps the raw numbers)."""
    if fmt not in _FORMATS:
        raise ValueError(f"fmt must be one of {_FORMATS}, not {fmt!r}")
    if fmt == "styler":
        out: Any = styled(df, caption=caption)
        text = out.to_html() if path is not None else None
    elif fmt == "markdown":
        out = text = to_markdown(df)
    elif fmt == "html":
        out = text = styled(df, caption=caption).to_html()
    else:
        out = text = df.to_csv()
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return out


def result_card_html(result: Any, t: dict[str, Any], objects: str) -> str:
    """A result's card for notebooks (``MapflowResult._repr_html_``): ``objects`` (what
    is known of them), tiles, coverage, credits (``t``: the result's totals), the failed
    tiles with their messages and the per-row costs. Never loads the objects."""
    e = html.escape
    rows = [
        ("objects", objects),
        ("input rows", f"{t['rows']} ({t['area_km2']:,.2f} km²)"),
        ("tiles", f"{t['tiles_ok']} OK of {t['tiles']}, {t['tiles_failed']} failed"),
        ("coverage", "—" if t["coverage"] is None else f"{t['coverage']:.1%}"),
        ("processings", f"{t['processings']}"),
        (
            "credits",
            f"{t['charged_credits']:,} charged, {t['estimated_credits']:,} estimated",
        ),
    ]
    if t["charged_earlier_credits"]:
        rows.append(("charged earlier", f"{t['charged_earlier_credits']:,} credits"))
    if result.run_dir is not None:
        rows.append(("run dir", str(result.run_dir)))
    cells = "".join(
        f"<tr><th style='text-align:left;padding:1px 8px'>{e(k)}</th>"
        f"<td style='text-align:left;padding:1px 8px'>{e(v)}</td></tr>"
        for k, v in rows
    )
    out = f"<div><b>MapflowResult</b><table>{cells}</table>"
    failed = result.failed
    if len(failed):
        cols = [c for c in ("tile_id", "row", "status", "messages") if c in failed]
        shown = failed[cols].head(10).copy()
        if "messages" in shown:
            shown["messages"] = [
                "; ".join(map(str, v)) if isinstance(v, list | tuple) else str(v)
                for v in shown["messages"]
            ]
        more = f" (first 10 of {len(failed)})" if len(failed) > 10 else ""
        out += f"<details open><summary>Failed tiles{more}</summary>"
        out += shown.to_html(index=False, escape=True) + "</details>"
    out += "<details><summary>Credits per input row</summary>"
    out += result.costs_table("html") + "</details></div>"
    return out

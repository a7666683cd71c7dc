"""Error-code table (generated from the docs) and message rendering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.paths import ROOT

from mapflow_geo.messages import error_table, lookup, render_message, render_messages
from mapflow_geo.models import Message

DOC = Path("/work/shared/api-docs/000_49164eba94aaadef.txt")


def test_table_is_packaged_and_complete():
    table = error_table()
    assert len(table) >= 50
    assert table["source-validator.PixelSizeTooHigh"]["parameters"] == ["actual_res", "max_res"]
    assert table["source-validator.UrlMustBeLink"]["parameters"] == []
    assert table["source-validator.InvalidZoomValue"]["parameters"] == [
        "actual_zoom"
    ]  # "actual_zoom}" in the docs
    assert "vector-processor.internalError" in table
    for code, row in table.items():
        assert row["template"] and "|" not in row["template"], code


@pytest.mark.skipif(not DOC.exists(), reason="docs not available")
def test_generator_reproduces_committed_json():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "build_error_messages", ROOT / "tools" / "build_error_messages.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = mod.parse(DOC.read_text(encoding="utf-8"))
    committed = json.loads(
        (ROOT / "mapflow_geo" / "data" / "error_messages.json").read_text("utf-8")
    )["messages"]
    for code, row in rows.items():
        assert committed[code]["template"] == row["template"]
    assert sum(
        1
        for line in DOC.read_text(encoding="utf-8").splitlines()
        if line.strip().rstrip("|").strip() in rows
    ) >= len(rows)


@pytest.mark.parametrize(
    "params",
    [
        {"max_res": "1.2", "level": "error", "actual_res": "5.62"},
        [{"key": "max_res", "value": "1.2"}, {"key": "actual_res", "value": "5.62"}],
    ],
)
def test_render_fills_parameters(params):
    text = render_message({"code": "source-validator.PixelSizeTooHigh", "parameters": params})
    assert text == (
        "Spatial resolution of you image is too high: pixel size is 5.62, "
        "maximum allowed pixel size is 1.2"
    )


def test_render_edge_cases():
    # missing params stay visible; key/value single-pair form
    assert (
        render_message(
            {
                "code": "source-validator.TooHighZoom",
                "parameters": {"key": "max_zoom", "value": "18"},
            }
        )
        == "Zoom must be not higher than 18, got {actual_zoom}"
    )
    # literal placeholders of the template are not parameters
    assert "{x}" in render_message({"code": "source-validator.XYZLinkFormatError"})
    # the table's own typo: parameter real_source_types, placeholder {real_source_type}
    assert "Wrong source type WMS." in render_message(
        {
            "code": "dataloader.UnknownSourceType",
            "parameters": {"real_source_types": "WMS", "allowed_source_types": ["XYZ", "TMS"]},
        }
    )
    # case-insensitive code lookup, lists joined
    assert lookup("DATALOADER.INTERNALERROR") is not None
    # unknown codes: code and params
    assert (
        render_message({"code": "x.New", "parameters": {"a": 1, "level": "error"}}) == "x.New (a=1)"
    )
    assert render_message({"code": "x.New"}) == "x.New"
    assert render_message({}) == "unknown error"
    assert render_message(Message.from_json({"code": "inference.internalError"})).startswith(
        "Internal error"
    )
    assert render_messages([{"code": "inference.internalError"}] * 3 + [{"code": "x"}]) == [
        render_message({"code": "inference.internalError"}),
        "x",
    ]

"""The SVG writer behind the capacity report and the benchmarks' plots."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from fabstack.stack.svg import Svg, time_plot

NS = "{http://www.w3.org/2000/svg}"


def test_text_is_escaped_and_the_document_parses() -> None:
    svg = Svg(100, 50)
    svg.text(1, 2, "<pool> & \"quotes\"")
    root = ET.fromstring(svg.render())
    assert [t.text for t in root.iter(f"{NS}text")] == ['<pool> & "quotes"']


def test_a_plot_marks_each_failed_request_and_counts_them() -> None:
    samples = [(0.0, 10.0, False), (1.0, 20.0, True), (2.0, 30.0, False), (3.0, 5000.0, True)]
    root = ET.fromstring(time_plot("t", samples))
    marks = [line for line in root.iter(f"{NS}line") if line.get("stroke") == "#d62728"]
    assert len(marks) == 2
    [curve] = root.iter(f"{NS}polyline")
    assert len(curve.get("points").split()) == 2  # failed requests are marks, not points of the curve
    assert any(t.text == "2 answered, 2 failed (red marks)" for t in root.iter(f"{NS}text"))

"""A small SVG writer (no dependency): boxes, lines, text and polylines, for the capacity report's pictures and
the benchmarks' plots."""

from __future__ import annotations

from html import escape


class Svg:
    """An SVG picture built element by element; ``render`` gives the document."""

    def __init__(self, width: float, height: float) -> None:
        self.width, self.height = width, height
        self.parts: list[str] = []

    def rect(self, x: float, y: float, w: float, h: float, *, fill: str = "none", stroke: str = "none",
             rx: float = 0, title: str = "") -> None:
        """A rectangle (with a tooltip when ``title`` is given)."""
        tip = f"<title>{escape(title)}</title>" if title else ""
        self.parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="{rx}" '
                          f'fill="{fill}" stroke="{stroke}">{tip}</rect>')

    def text(self, x: float, y: float, text: str, *, size: float = 12, anchor: str = "start",
             weight: str = "normal", fill: str = "#222") -> None:
        """One line of text whose baseline starts (or is centred, or ends) at x, y."""
        self.parts.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
                          f'font-weight="{weight}" fill="{fill}">{escape(text)}</text>')

    def line(self, x1: float, y1: float, x2: float, y2: float, *, stroke: str = "#555", width: float = 1,
             dash: str = "", arrow: bool = False) -> None:
        """A straight line, dashed or ending in an arrow head if asked."""
        extra = (f' stroke-dasharray="{dash}"' if dash else "") + (' marker-end="url(#arrow)"' if arrow else "")
        self.parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" '
                          f'stroke-width="{width}"{extra}/>')

    def polyline(self, points: list[tuple[float, float]], *, stroke: str = "#1f77b4", width: float = 1) -> None:
        """Connected line segments through the points."""
        joined = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        self.parts.append(f'<polyline points="{joined}" fill="none" stroke="{stroke}" stroke-width="{width}"/>')

    def circle(self, x: float, y: float, r: float, *, fill: str) -> None:
        """A filled dot."""
        self.parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{fill}"/>')

    def render(self) -> str:
        """The SVG document (white background, an arrow marker for lines that ask for one)."""
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width:.0f}" height="{self.height:.0f}" '
                f'viewBox="0 0 {self.width:.0f} {self.height:.0f}" font-family="sans-serif">'
                '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
                'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>'
                f'<rect width="100%" height="100%" fill="white"/>{"".join(self.parts)}</svg>')


def time_plot(title: str, samples: list[tuple[float, float, bool]], *, y_label: str = "latency (ms)",
              width: float = 760, height: float = 300) -> str:
    """Samples (seconds since start, a value, whether it failed) as a line over time; failed ones as red marks
    on the time axis. Used by the benchmarks for latency over a run."""
    svg = Svg(width, height)
    left, right, top, bottom = 60, 20, 30, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    svg.text(width / 2, 18, title, size=14, anchor="middle", weight="bold")
    t_max = max((t for t, _, _ in samples), default=1) or 1
    ok = [(t, v) for t, v, failed in samples if not failed]
    v_max = max((v for _, v in ok), default=1) * 1.1 or 1
    svg.line(left, top, left, top + plot_h)
    svg.line(left, top + plot_h, left + plot_w, top + plot_h)
    for step in range(5):
        value, y = v_max * step / 4, top + plot_h - plot_h * step / 4
        svg.line(left - 4, y, left + plot_w, y, stroke="#ddd")
        svg.text(left - 6, y + 4, f"{value:.0f}", size=10, anchor="end")
    for step in range(6):
        t, x = t_max * step / 5, left + plot_w * step / 5
        svg.text(x, top + plot_h + 14, f"{t:.0f}s", size=10, anchor="middle")
    svg.text(left - 6, top - 8, y_label, size=10)
    svg.polyline([(left + plot_w * t / t_max, top + plot_h - plot_h * v / v_max) for t, v in ok], width=1)
    failures = [t for t, _, failed in samples if failed]
    for t in failures:
        svg.line(left + plot_w * t / t_max, top + plot_h - 8, left + plot_w * t / t_max, top + plot_h,
                 stroke="#d62728", width=2)
    svg.text(left + plot_w, top + plot_h + 30, f"{len(ok)} answered, {len(failures)} failed (red marks)", size=10,
             anchor="end", fill="#d62728" if failures else "#222")
    return svg.render()

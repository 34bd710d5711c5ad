"""The HTTP side of fabstack's own small exporters (PHP-FPM's and PgBouncer's pools): serve /metrics on one
address, the text made fresh by a function on each scrape. Standard library only; installed on every host by the
common role beside the exporters that import it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def family(name: str, kind: str, text: str, samples: Iterable[tuple[dict[str, str], float]]) -> list[str]:
    """One metric family in the exposition format: HELP, TYPE and a line per (labels, value)."""
    lines = [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        shown = ",".join(f'{k}="{_escaped(v)}"' for k, v in labels.items())
        lines.append(f"{name}{{{shown}}} {value}" if shown else f"{name} {value}")
    return lines


def _escaped(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def serve(listen: str, render: Callable[[], list[str]]) -> None:
    """Answer GET /metrics on ``listen`` (ADDRESS:PORT) with ``render()``'s lines; 404 for any other path."""
    address, _, port = listen.rpartition(":")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = ("\n".join(render()) + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    ThreadingHTTPServer((address, int(port)), Handler).serve_forever()

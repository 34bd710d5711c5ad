#!/usr/bin/python3
"""PHP-FPM's pool status for Prometheus: asks the pool's status page over its FastCGI socket on each scrape and
answers it as metrics (Debian packages no PHP-FPM exporter). Standard library only."""

from __future__ import annotations

import argparse
import json
import socket
import struct

from metrics_server import family, serve

BEGIN_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT = 1, 3, 4, 5, 6
RESPONDER = 1
HEADER = struct.Struct("!BBHHBx")
# status page field -> (metric, type, help)
FIELDS = {
    "accepted conn": ("phpfpm_accepted_connections_total", "counter", "requests the pool accepted"),
    "listen queue": ("phpfpm_listen_queue", "gauge", "requests waiting for a free child"),
    "max listen queue": ("phpfpm_max_listen_queue", "gauge", "most requests ever waiting"),
    "listen queue len": ("phpfpm_listen_queue_length", "gauge", "size of the socket's listen queue"),
    "idle processes": ("phpfpm_idle_processes", "gauge", "children idle"),
    "active processes": ("phpfpm_active_processes", "gauge", "children serving a request"),
    "total processes": ("phpfpm_total_processes", "gauge", "children running"),
    "max active processes": ("phpfpm_max_active_processes", "gauge", "most children ever active at once"),
    "max children reached": ("phpfpm_max_children_reached_total", "counter", "times pm.max_children was hit"),
    "slow requests": ("phpfpm_slow_requests_total", "counter", "requests slower than the slowlog timeout"),
}


def record(kind: int, body: bytes) -> bytes:
    """One FastCGI record of request 1, padded to a multiple of 8 bytes."""
    padding = -len(body) % 8
    return HEADER.pack(1, kind, 1, len(body), padding) + body + b"\0" * padding


def pair(name: str, value: str) -> bytes:
    """A FastCGI name-value pair (each under 128 bytes: one length byte each)."""
    return bytes([len(name), len(value)]) + name.encode() + value.encode()


def status(socket_path: str, path: str, timeout: float) -> dict:
    """The pool's status page as JSON, fetched over the FastCGI socket."""
    params = b"".join(pair(k, v) for k, v in (("SCRIPT_NAME", path), ("SCRIPT_FILENAME", path),
                                              ("REQUEST_METHOD", "GET"), ("QUERY_STRING", "json")))
    request = (record(BEGIN_REQUEST, struct.pack("!HB5x", RESPONDER, 0)) + record(PARAMS, params)
               + record(PARAMS, b"") + record(STDIN, b""))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(socket_path)
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    out = b""
    while len(data) >= HEADER.size:
        _, kind, _, length, padding = HEADER.unpack(data[:HEADER.size])
        if kind == END_REQUEST:
            break
        if kind == STDOUT:
            out += data[HEADER.size:HEADER.size + length]
        data = data[HEADER.size + length + padding:]
    return json.loads(out.split(b"\r\n\r\n", 1)[-1])


def render(args: argparse.Namespace) -> list[str]:
    """phpfpm_up, the pool's counters and gauges, and its configured max_children."""
    try:
        page = status(args.socket, args.status_path, args.timeout)
    except (OSError, ValueError):
        return family("phpfpm_up", "gauge", "1 when the pool's status page answered", [({}, 0)])
    lines = family("phpfpm_up", "gauge", "1 when the pool's status page answered", [({}, 1)])
    pool = {"pool": str(page.get("pool", ""))}
    for field, (name, kind, text) in FIELDS.items():
        if field in page:
            lines += family(name, kind, text, [(pool, page[field])])
    return lines + family("phpfpm_max_children", "gauge", "pm.max_children of the pool", [(pool, args.max_children)])


def main() -> None:
    """Serve the pool's metrics on the given address."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True, help="ADDRESS:PORT")
    parser.add_argument("--socket", required=True, help="the pool's FastCGI socket")
    parser.add_argument("--status-path", default="/fpm-status", help="the pool's pm.status_path")
    parser.add_argument("--max-children", type=int, default=0, help="the pool's pm.max_children")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the pool")
    args = parser.parse_args()
    serve(args.listen, lambda: render(args))


if __name__ == "__main__":
    main()

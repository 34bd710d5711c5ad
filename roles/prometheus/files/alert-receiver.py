"""A webhook receiver that records what Alertmanager sends (one JSON document a line): the sandbox's pager."""

import http.server
import json
import sys
import time

RECORD = "/var/lib/fabstack-alerts/received.jsonl"


class Receiver(http.server.BaseHTTPRequestHandler):
    """Appends each POSTed notification, with the time it arrived."""

    def do_POST(self) -> None:  # noqa: N802 - the standard library's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(RECORD, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"received": time.time(), "notification": json.loads(body or b"{}")}) + "\n")
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Receiver).serve_forever()

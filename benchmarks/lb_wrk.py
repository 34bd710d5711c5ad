"""wrk against the sandbox's load balancer, two profiles on the same hosts. Traffic goes only to the LB's
sandbox address, for a bounded time per run.

``--app php`` (default): fabstack's tuned config against distro-default sizing. "Distro default" means the values
Debian ships: PHP-FPM's www pool (pm dynamic, max_children 5), nginx's worker_connections 768, and no idle
keep-alive from the LB to the apps.
``--app node``: the Express app (``/school/``) with one Node.js instance per core against a single instance per
host (the roadmap's "clustering" claim).

The per-IP rate limits are lifted in both runs (wrk is one client IP). Beside wrk, a probe client sends requests
of its own and each profile's plot of its latency over the run (failed requests marked) goes to
.fabstack/reports/. The tuned config is deployed again at the end.

Usage: .venv/bin/python benchmarks/lb_wrk.py [--app php|node] [--seconds 10] [--connections 64] [--path /]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path

from common import REPO, quiet_deploy, sandbox_up, write_plot

from fabstack.engine.inventory import load_inventory
from tests.integration.chaos import Load

UNLIMITED = ["nginx_limit_req_rate=1000000", "nginx_limit_req_burst=1000000", "nginx_limit_conn=60000"]
DISTRO = ["php_fpm_max_children=5", "nginx_worker_connections=768", "nginx_upstream_keepalive=1"]
# app -> (default path, its two profiles: name -> overrides)
PROFILES = {
    "php": ("/", {"tuned": UNLIMITED, "distro-default": UNLIMITED + DISTRO}),
    "node": ("/school/", {"one per core": UNLIMITED + ["express_app_rate_limit=1000000"],
                          "single instance": UNLIMITED + ["express_app_rate_limit=1000000", "node_instances=1"]}),
}


def wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    """One bounded wrk run; returns req/s, latency percentiles and error counts."""
    script = Path(__file__).with_name("lb_wrk.lua")
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "5s", "-s", str(script), url],
        capture_output=True, text=True, check=True, timeout=seconds + 30,
    ).stdout
    figures = {k: float(v) for k, v in re.findall(r"^(\w+) ([\d.]+)$", out, re.M)}
    figures["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return figures


def main() -> None:
    """Deploy each profile, measure it, print a comparison table, restore the tuned config."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--app", choices=sorted(PROFILES), default="php")
    parser.add_argument("--path", default=None)
    args = parser.parse_args()
    path, profiles = PROFILES[args.app]
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: run scripts/setup.sh")
    sandbox_up()
    lb = load_inventory(REPO, "sandbox").resolve("lb1").values["ansible_host"]
    url = f"https://{lb}{args.path or path}"
    results, plots = {}, []
    try:
        for name, overrides in profiles.items():
            quiet_deploy(overrides=overrides)
            wrk(url, 2, 8)  # warm-up: OPcache, connections
            # a probe client beside wrk: the latency one more user sees over the run
            with Load(args.path or path, seconds=args.seconds + 2) as probe:
                results[name] = wrk(url, args.seconds, args.connections)
            plots.append(write_plot(f"lb_wrk-{args.app}-{name.replace(' ', '-')}",
                                    f"{name}: a probe's latency under wrk's {args.connections} connections",
                                    probe.samples))
    finally:
        quiet_deploy()
    print(f"wrk {url}: {args.connections} connections, 2 threads, {args.seconds}s per run")
    print(f"{'profile':<16}{'req/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'errors':>8}")
    for name, r in results.items():
        print(f"{name:<16}{r['rps']:>10.1f}{r['p50_ms']:>9.1f}{r['p95_ms']:>9.1f}{r['p99_ms']:>9.1f}"
              f"{int(r['non2xx']):>9}{int(r['errors']):>8}")
    for plot in plots:
        print(f"plot: {plot}")


if __name__ == "__main__":
    main()

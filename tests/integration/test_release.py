"""Releases of the team's own apps from git, under constant load through the load balancer (sandbox only)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from fabstack.day2 import release
from fabstack.engine.errors import FabstackError
from fabstack.sandbox.hosts import git
from tests.conftest import REPO
from tests.integration.chaos import LB, Load
from tests.integration.conftest import in_host

# app -> (path through the LB, file changed for a new commit, a comment line in it, bare repository)
APPS = {
    "shop": ("/", "resources/views/about.blade.php", "{{-- %s --}}", REPO / ".fabstack/sandbox/git/shop.git"),
    "fastapi": ("/api/", "record_release.py", "# %s", REPO / ".fabstack/sandbox/git/fastapi.git"),
    "express": ("/school/", "record_release.js", "// %s", REPO / ".fabstack/sandbox/git/express.git"),
}


def push_commit(app: str, tmp_path: Path, text: str, branch: str = "main", break_health: bool = False) -> str:
    """A new commit of the app's repository (a changed file; or a /health that fails), pushed to ``branch``."""
    work = tmp_path / f"work-{app}-{time.monotonic_ns()}"
    bare = APPS[app][3]
    git("clone", "--quiet", str(bare), str(work), cwd=tmp_path)
    changed = work / APPS[app][1]
    changed.write_text(changed.read_text() + "\n" + APPS[app][2] % text + "\n")
    if break_health:
        if app == "fastapi":
            main = work / "main.py"
            main.write_text(main.read_text().replace('return {"ok": True}', 'raise HTTPException(500, "broken")'))
        else:
            controller = work / "app/Http/Controllers/ShopController.php"
            controller.write_text(controller.read_text().replace("['ok' => true]", "['ok' => false], 500"))
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", text, cwd=work)
    git("push", "--quiet", "--force", "origin", f"HEAD:{branch}", cwd=work)
    commit = git("rev-parse", "HEAD", cwd=work)
    shutil.rmtree(work)
    return commit


def live(host: str, dest: str) -> str:
    """The release a host serves now."""
    return in_host(host, f"basename $(readlink {dest}/current)").stdout.strip()


def db(sql: str) -> str:
    """One value from the primary's app database."""
    return in_host("db1", f"runuser -u postgres -- psql -X -At -d app -c \"{sql}\"").stdout.strip()


def wait_for_job(app: str, lb_path: str) -> str:
    """Queue a job through the LB and return the revision of the worker that ran it."""
    out = subprocess.run(["curl", "-sfk", f"https://{LB}{lb_path}enqueue?payload=release-test"], capture_output=True,
                         text=True, timeout=20, check=True).stdout
    job = out.split('"queued":"')[1].split('"')[0]
    for _ in range(100):
        found = db(f"select revision from jobs_done where job_id = '{job}'")
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{app}: job {job} never processed")


@pytest.mark.parametrize("app", list(APPS))
def test_release_under_load_serves_new_code_with_no_failed_request(deployed: list, tmp_path: Path, app: str,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = APPS[app][0]
    commit = push_commit(app, tmp_path, f"release under load {time.time_ns()}")
    with Load(path) as load:
        [figures] = release.release(REPO, "sandbox", app=app)
        switched = time.monotonic()
    assert sorted(figures.changed) == ["app1", "app2", "cache1"]
    assert load.errors == [] and load.failed == 0, (load.statuses, load.errors[:3])
    assert load.total > 20
    after = [rev for at, rev in load.revisions if at > switched]
    assert after and set(after) == {commit[:12]}  # nothing old served once the release is done (OPcache included)
    assert db(f"select count(*) from app_releases where revision = '{commit}'") == "1"  # the once-hook ran once
    assert wait_for_job(app, path) == commit  # the workers run the new release
    if app == "express":  # every instance runs the new release's own folder (nothing resolved before the switch)
        for host in ("app1", "app2"):
            cwds = in_host(host, "for u in $(systemctl list-units --plain --no-legend 'fabstack-express@*' | "
                                 "awk '{print $1}'); do runuser -u www-data -- readlink "
                                 "/proc/$(systemctl show -p MainPID --value $u)/cwd; done").stdout.split()
            assert cwds and set(cwds) == {f"/srv/express-app/releases/{commit[:12]}"}, (host, cwds)
    again = release.release(REPO, "sandbox", app=app)
    assert again[0].changed == []  # the same ref again: 0 changed
    assert "changed=0" in capsys.readouterr().out


def test_failed_health_check_stops_on_the_first_host_and_puts_it_back(deployed: list, tmp_path: Path) -> None:
    before = {h: live(h, "/srv/fastapi-app") for h in ("app1", "app2")}
    bad = push_commit("fastapi", tmp_path, "a release whose health check fails", branch="broken", break_health=True)
    with Load("/api/") as load, pytest.raises(FabstackError) as err:
        release.release(REPO, "sandbox", app="fastapi", ref="broken")
    assert err.value.host == "app1" and "health check" in err.value.message
    assert {h: live(h, "/srv/fastapi-app") for h in ("app1", "app2")} == before  # back on the previous release
    assert bad[:12] not in in_host("app2", "ls /srv/fastapi-app/releases").stdout  # never touched
    assert "down" not in in_host("lb1", "cat /etc/nginx/fabstack-upstreams/*.conf").stdout  # back in the LB
    assert load.errors == [] and load.failed == 0, (load.statuses, load.errors[:3])
    assert in_host("app1", "test -e /srv/fastapi-app/.fabstack-lock").returncode != 0  # lock released


def test_rollback_under_load_goes_back_and_marks_the_bad_release(deployed: list, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    previous = live("app1", "/srv/php-app")
    commit = push_commit("shop", tmp_path, f"to be rolled back {time.time_ns()}")
    release.release(REPO, "sandbox", app="shop")
    try:
        with Load("/") as load:
            [figures] = release.rollback(REPO, "sandbox", app="shop")
        assert load.errors == [] and load.failed == 0, (load.statuses, load.errors[:3])
        assert {live(h, "/srv/php-app") for h in ("app1", "app2", "cache1")} == {previous}
        assert in_host("app1", f"test -e /srv/php-app/releases/{commit[:12]}/.fabstack-bad").returncode == 0
        assert f"rollback shop: changed=3 in {figures.seconds} s" in capsys.readouterr().out
    finally:
        release.release(REPO, "sandbox", app="shop")  # main again (a release switched to is good again)


def test_stale_lock_is_reported_with_owner_and_age_and_removed_only_on_request(deployed: list) -> None:
    owner = f"someone@{socket.gethostname()} pid 99999999"
    in_host("app2", f"printf %s '{owner}' > /srv/fastapi-app/.fabstack-lock && touch -d '90 seconds ago' "
                    "/srv/fastapi-app/.fabstack-lock")
    try:
        with pytest.raises(FabstackError) as err:
            release.release(REPO, "sandbox", app="fastapi")
        assert err.value.host == "app2" and owner in err.value.message and "stale" in err.value.message
        age = int(err.value.message.split(" for ")[1].split(" s")[0])
        assert 85 <= age < 600
        lines: list[str] = []
        release.status(REPO, "sandbox", app="fastapi", out=lines.append)
        live_rev = live("app2", "/srv/fastapi-app")
        [app2] = [line for line in lines if line.strip().startswith("app2")]
        assert f"live {live_rev} since 20" in app2 and f"{live_rev}*" in app2 and f"LOCKED by {owner}" in app2
        [figures] = release.release(REPO, "sandbox", app="fastapi", force_unlock=True)
        assert figures.changed == []
    finally:
        in_host("app2", "rm -f /srv/fastapi-app/.fabstack-lock")


def test_node_app_serves_again_after_its_host_reboots(deployed: list) -> None:
    subprocess.run(["podman", "restart", "-t", "10", "fabstack-app2"], check=True, capture_output=True, timeout=120)
    try:
        for _ in range(120):  # the instances start at boot: no step of ours
            if in_host("app2", "curl -sf http://127.0.0.1:8002/health").returncode == 0:
                break
            time.sleep(0.5)
        out = in_host("app2", "curl -sf http://127.0.0.1:8002/")
        assert out.returncode == 0 and '"app":"express"' in out.stdout
    finally:
        in_host("app2", "systemctl is-system-running --wait", timeout=120)


def test_a_long_celery_task_running_during_a_release_completes_exactly_once(deployed: list, tmp_path: Path) -> None:
    out = subprocess.run(["curl", "-sfk", f"https://{LB}/api/enqueue?priority=high&seconds=20"], capture_output=True,
                         text=True, timeout=20, check=True).stdout
    task = out.split('"queued":"')[1].split('"')[0]
    for _ in range(100):
        if db(f"select count(*) from task_runs where task_id = '{task}'") == "1":
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"task {task} never started")
    commit = push_commit("fastapi", tmp_path, f"released while a task runs {time.time_ns()}")
    release.release(REPO, "sandbox", app="fastapi")  # restarts the Celery workers: each finishes its task first
    for _ in range(150):
        if "finished" in db(f"select string_agg(state, ',') from task_runs where task_id = '{task}'"):
            break
        time.sleep(0.2)
    runs = db(f"select string_agg(state || ':' || revision, ',' order by id) from task_runs where task_id = '{task}'")
    assert runs.count("started") == 1 and runs.count("finished") == 1, runs  # once, not lost, not run twice
    assert commit not in runs  # it finished on the release that took it
    assert wait_for_job("fastapi", "/api/") == commit  # the new workers took over


RATE_PROBE = r"""
import json, sys, urllib.error, urllib.request
ports, count, client = [int(p) for p in sys.argv[1].split(",")], int(sys.argv[2]), sys.argv[3]
seen = []
for i in range(count):
    port = ports[i % len(ports)]
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"X-Forwarded-For": client})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            code, headers = response.status, response.headers
    except urllib.error.HTTPError as error:
        code, headers = error.code, error.headers
    seen.append([port, code, headers.get("RateLimit-Limit"), headers.get("RateLimit-Remaining")])
print(json.dumps(seen))
"""


def rate_probe(ports: str, count: int, client: str) -> list[list]:
    """Requests sent in turn to each instance port on app1 from one client address: (port, status, limit, left)."""
    import json

    out = in_host("app1", f"python3 -c '{RATE_PROBE}' {ports} {count} {client}")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_express_rate_limit_is_shared_by_every_instance(deployed: list) -> None:
    # Requests in turn to the two instances: with one counter in Redis, each answer's allowance left is one less
    # than the previous answer's (from the other instance), except where a new second began and the count
    # restarted; with a counter per instance, two answers in a row would show the same allowance.
    seen = rate_probe("3000,3001", 40, "203.0.113.7")
    limit = int(seen[0][2])
    left = [int(row[3]) for row in seen]
    steps = [(a, b) for a, b in zip(left, left[1:], strict=False)]
    assert all(b == a - 1 or b == limit - 1 for a, b in steps), seen
    assert sum(b == a - 1 for a, b in steps) >= len(steps) // 2, seen


def test_express_rate_limit_refuses_a_client_past_it_on_every_instance(deployed: list) -> None:
    # The shared count for one client, set past the limit for the next seconds as other instances would leave it:
    # every instance then refuses that client, and another client is still served.
    client = "203.0.113.8"
    env = dict(line.split("=", 1) for line in in_host("app1", "cat /etc/fabstack/express.env").stdout.splitlines()
               if "=" in line and not line.startswith("#"))
    cli = (f"REDISCLI_AUTH='{env['REDIS_PASSWORD']}' redis-cli --no-auth-warning --user {env['REDIS_USER']} "
           "-h 127.0.0.1")
    limit = int(rate_probe("3000", 1, "203.0.113.6")[0][2])
    now = int(in_host("cache1", "date +%s").stdout)
    fill = "\\n".join(f"SET ratelimit:{client}:{second} {limit} EX 30" for second in range(now, now + 30))
    try:
        out = in_host("cache1", f"printf '{fill}\\n' | {cli}")
        assert out.returncode == 0 and "ERR" not in out.stdout, out.stdout + out.stderr
        refused = rate_probe("3000,3001", 4, client)
        assert [row[1] for row in refused] == [429] * 4 and {row[3] for row in refused} == {"0"}, refused
        assert rate_probe("3000,3001", 2, "203.0.113.5")[0][1] == 200
    finally:
        in_host("cache1", f"{cli} --scan --pattern 'ratelimit:{client}:*' | xargs -r {cli} del")

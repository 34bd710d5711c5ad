"""testinfra checks of the pgbackrest_repo role: the repository passes pgBackRest's own check (the leader's WAL
reaches the archive now), is encrypted, holds a backup, and is its owner's alone."""

from typing import Any


def pgbackrest(hostvars: dict[str, Any], command: str) -> str:
    return f"runuser -u {hostvars['pgbackrest_repo_user']} -- pgbackrest {command}"


def test_the_stanza_passes_pgbackrests_check(host: Any, hostvars: dict[str, Any]) -> None:
    listed = host.check_output(pgbackrest(hostvars, "info --output=json"))
    stanza = __import__("json").loads(listed)[0]
    checked = host.run(pgbackrest(hostvars, f"--stanza={stanza['name']} check"))
    assert checked.rc == 0, checked.stderr or checked.stdout
    assert stanza["cipher"] == "aes-256-cbc"
    assert stanza["backup"], "no backup in the repository"


def test_the_repository_is_its_owners_alone(host: Any, hostvars: dict[str, Any]) -> None:
    repo = host.file(hostvars["pgbackrest_repo_path"])
    assert (repo.user, repo.mode) == (hostvars["pgbackrest_repo_user"], 0o750)
    config = host.file("/etc/pgbackrest.conf")
    assert (config.user, config.group, config.mode) == ("root", hostvars["pgbackrest_repo_user"], 0o640)

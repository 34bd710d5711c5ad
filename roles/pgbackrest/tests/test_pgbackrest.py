"""testinfra checks of the pgbackrest role: a db host's server archives through pgBackRest and the leader's
archive has no failure since it last succeeded; the key it reaches the repository with is its own and sits in
root's folder."""

from typing import Any


def psql(query: str) -> str:
    return f"runuser -u postgres -- psql -X -qAt -c {query!r}"


def test_a_members_server_archives_through_pgbackrest(host: Any, hostvars: dict[str, Any]) -> None:
    if "postgresql_data" not in hostvars:
        return  # a restore target: nothing to archive until a cluster is restored there
    assert host.check_output(psql("show archive_mode")) == "on"
    assert host.check_output(psql("show archive_command")).startswith(
        f"pgbackrest --stanza={hostvars['pgbackrest_stanza']} archive-push")
    if host.check_output(psql("select pg_is_in_recovery()")) == "f":
        # the leader has archived, and nothing failed since its last success
        row = host.check_output(psql("select last_archived_wal is not null and "
                                     "(last_failed_time is null or last_failed_time < last_archived_time) "
                                     "from pg_stat_archiver"))
        assert row == "t"


def test_the_repository_key_is_postgress_in_roots_folder(host: Any) -> None:
    folder, key = host.file("/etc/pgbackrest/ssh"), host.file("/etc/pgbackrest/ssh/id_ed25519")
    assert (folder.user, folder.mode) == ("root", 0o750)
    assert (key.user, key.mode) == ("postgres", 0o600)

"""What the pgBackRest roles declare in the patroni env: every db host archives to the one repository host, the
repository backs up every member, each side trusts only the other's key from the other's address, the cipher
pass never reaches a db host, and an env without the roles archives nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabstack.engine.errors import FabstackError
from fabstack.engine.project import Project
from fabstack.engine.runner import declare_offline
from tests.conftest import record_fake_host_keys
from tests.test_roles_declare import SMALL, add_to_group, declared_for, find, host_facts, refusal, text_of

CONFIG = "file /etc/pgbackrest.conf"


@pytest.fixture(scope="module")
def declared(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from tests.conftest import copy_project

    return declared_for(copy_project(tmp_path_factory.mktemp("pgbackrest") / "repo"), SMALL, env="patroni")


def test_each_member_archives_to_the_repository_once_out_of_recovery(declared: dict) -> None:
    for host in ("pdb1", "pdb2"):
        restart = find(declared, host, "postgresql", "file /etc/postgresql/15/main/conf.d/60-fabstack-restart.conf")
        reload = find(declared, host, "postgresql", "file /etc/postgresql/15/main/conf.d/61-fabstack.conf")
        assert "archive_mode = on" in restart
        assert "archive_command = 'pgbackrest --stanza=fabstack archive-push %p'" in reload
        assert "archive_timeout = 60" in reload
        config = find(declared, host, "pgbackrest", CONFIG)
        assert "repo1-host=10.217.0.31" in config and "archive-async=y" in config
        assert "pg1-path=/var/lib/postgresql/15/main" in config


def test_the_repository_backs_up_every_member_encrypted(declared: dict) -> None:
    config = find(declared, "backup1", "pgbackrest_repo", CONFIG)
    assert "pg1-host=10.217.0.11" in config and "pg2-host=10.217.0.12" in config
    assert "10.217.0.32" not in config  # the restore target is no member
    assert "repo1-cipher-type=aes-256-cbc" in config and "repo1-retention-full=4" in config
    ops = {op.id: op for name, op in declared["backup1"] if name == "pgbackrest_repo"}
    assert ops[CONFIG].secret
    assert "stanza-create" in text_of(ops["command stanza fabstack"])
    crons = [text_of(ops[f"file /etc/cron.d/fabstack-pgbackrest-{kind}"]) for kind in ("full", "diff", "incr")]
    assert all(" pgbackrest --stanza=fabstack --type=" in c for c in crons)
    assert "fabstack-pgbackrest-metrics" in text_of(ops["file /etc/cron.d/fabstack-pgbackrest-metrics"])


def test_no_db_host_holds_the_cipher_pass(declared: dict) -> None:
    config = find(declared, "backup1", "pgbackrest_repo", CONFIG)
    cipher = next(line for line in config.splitlines() if line.startswith("repo1-cipher-pass="))
    for host in ("pdb1", "pdb2", "prestore1", "pgw1"):
        assert not any(cipher in text_of(op) for _, op in declared[host])


def test_each_side_lets_in_only_the_other_from_its_address(declared: dict) -> None:
    member = find(declared, "pdb1", "pgbackrest", "file /var/lib/postgresql/.ssh/authorized_keys")
    assert 'from="10.217.0.31",restrict ssh-ed25519 ' in member
    repo = find(declared, "backup1", "pgbackrest_repo", "file /var/lib/pgbackrest/.ssh/authorized_keys")
    assert 'from="10.217.0.11,10.217.0.12,10.217.0.32",restrict ssh-ed25519 ' in repo
    assert member.split("ssh-ed25519 ")[1] != repo.split("ssh-ed25519 ")[1]  # two keys, one per direction
    wrapper = find(declared, "pdb1", "pgbackrest", "file /usr/local/sbin/fabstack-pgbackrest-ssh")
    assert "StrictHostKeyChecking=yes" in wrapper and "UserKnownHostsFile=/etc/pgbackrest/ssh/known_hosts" in wrapper


def test_a_restore_target_gets_the_tiers_server_and_no_archiving(declared: dict) -> None:
    assert "postgresql-15" in find(declared, "prestore1", "pgbackrest", "packages pgbackrest postgresql-15")
    assert not [op for name, op in declared["prestore1"] if name == "postgresql"]


def test_an_env_without_pgbackrest_archives_nothing(tmp_path: Path) -> None:
    from tests.conftest import copy_project

    sandbox = declared_for(copy_project(tmp_path / "repo"), SMALL)
    restart = find(sandbox, "db1", "postgresql", "file /etc/postgresql/15/main/conf.d/60-fabstack-restart.conf")
    assert "archive_mode" not in restart


def test_a_repository_group_of_two_hosts_is_refused(project_copy: Path) -> None:
    add_to_group(project_copy, "patroni", "backup", "pgw1")
    refused = refusal(project_copy, "patroni")
    assert refused.key == "pgbackrest_repo_group" and "has 2" in refused.message


def test_a_second_repository_in_s3_is_added_by_its_options(project_copy: Path) -> None:
    from fabstack.tiers.env import load_env

    project = load_env(project_copy, "patroni")
    project.set_overrides(['pgbackrest_repo_options={"repo2-type": "s3", "repo2-s3-bucket": "acme-db", '
                           '"repo2-retention-full": 12}'])
    config = repo_config(project)
    assert {"repo2-type=s3", "repo2-s3-bucket=acme-db", "repo2-retention-full=12"} <= set(config.splitlines())


@pytest.mark.parametrize("options", ['{"repo1-path": "/tmp/elsewhere"}', '{"log-path": "/tmp"}',
                                     '{"repo2-s3-bucket": "two words"}', '{"repo2-path": "x\\\\nrepo1-path=/tmp"}',
                                     '["repo2-type=s3"]'])
def test_options_that_would_move_the_repository_or_inject_a_line_are_refused(project_copy: Path,
                                                                           options: str) -> None:
    from fabstack.tiers.env import load_env

    project = load_env(project_copy, "patroni")
    project.set_overrides([f"pgbackrest_repo_options={options}"])
    with pytest.raises(FabstackError) as refused:
        project.setup("backup1", None)
    assert refused.value.key == "pgbackrest_repo_options" and refused.value.host == "backup1"


def repo_config(project: Project) -> str:
    """The repository host's pgBackRest settings as a deploy would write them (host keys made up)."""
    record_fake_host_keys(project.root, "patroni")
    facts = {name: host_facts(project.setup(name, None).vars["ansible_host"], name, SMALL)
             for name in project.inventory.hosts}
    declared = declare_offline(project, facts)
    return next(op.content.decode() for _, op in declared["backup1"] if op.id == CONFIG)  # type: ignore[attr-defined]


def test_ssh_between_the_db_hosts_and_the_backup_host_passes_a_narrowed_ssh_rule(project_copy: Path) -> None:
    from fabstack.tiers.env import load_env

    project = load_env(project_copy, "patroni")
    project.set_overrides(["firewall_ssh_sources=[10.217.0.1/32]"])
    record_fake_host_keys(project.root, "patroni")
    facts = {name: host_facts(project.setup(name, None).vars["ansible_host"], name, SMALL)
             for name in project.inventory.hosts}
    declared = declare_offline(project, facts)

    def ruleset(host: str) -> str:
        return next(op.content.decode() for _, op in declared[host]  # type: ignore[attr-defined]
                    if op.id == "file /etc/nftables.conf")

    # the env's admin sources are always let in beside each rule's groups
    assert "tcp dport { 22 } ip saddr { 10.217.0.31/32, 10.217.0.1/32 } accept" in ruleset("pdb1")
    assert "tcp dport { 22 } ip saddr { 10.217.0.11/32, 10.217.0.12/32, 10.217.0.32/32, 10.217.0.1/32 } accept" \
        in ruleset("backup1")
    assert "tcp dport { 22 } ip saddr" not in ruleset("pgw1")

"""SQL on a MariaDB host of the tier, as MariaDB's root over the local socket."""

from __future__ import annotations

import shlex

from fabstack.engine.remote import RemoteHost


def mariadb(host: RemoteHost, query: str, check: bool = True) -> str:
    """Statements separated by ``;``; tab-separated rows."""
    return host.run(f"mariadb --batch -N -e {shlex.quote(query)}", check=check)

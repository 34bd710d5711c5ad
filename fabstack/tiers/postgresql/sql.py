"""SQL on a PostgreSQL host of the tier, as the postgres superuser over the local socket."""

from __future__ import annotations

import shlex

from fabstack.engine.remote import RemoteHost


def sql(host: RemoteHost, query: str, database: str = "postgres", check: bool = True) -> str:
    """One SQL query; its unaligned output."""
    return host.run(f"runuser -u postgres -- psql -X -At -v ON_ERROR_STOP=1 -d {shlex.quote(database)} "
                    f"-c {shlex.quote(query)}", check=check)

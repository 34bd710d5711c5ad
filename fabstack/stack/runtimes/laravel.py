"""Laravel on PHP-FPM: composer's autoloader built on the controller, Laravel's caches made in each release on the
host, PHP-FPM reloaded after the switch (which empties OPcache: nginx resolves the new path with $realpath_root),
and the queue workers told to restart once their job is done (``artisan queue:restart``)."""

from __future__ import annotations

import shlex
from pathlib import Path

from fabstack.stack.runtimes import buildstep
from fabstack.stack.runtimes.base import FASTCGI, AppLike, Runtime, supervisor_start

# The caches Laravel's production checklist asks for, made as the app's user in the new release before it goes live.
CACHES = ("config:cache", "route:cache", "view:cache")


def build(app: AppLike, tree: Path) -> None:
    """``composer install --no-dev --optimize-autoloader`` with Debian's composer, when the app has a composer.json;
    no scripts, and no plugins unless the app sets ``composer_plugins: true``."""
    if not (tree / "composer.json").is_file():
        return
    command = ["composer", "install", "--no-dev", "--optimize-autoloader", "--no-interaction", "--no-progress",
               "--no-scripts", *([] if app.composer_plugins else ["--no-plugins"])]
    buildstep.run(command, tree, "composer install", timeout=600)


def artisan(app: AppLike, release: str, command: str) -> str:
    """``php artisan COMMAND`` as the app's user in ``release``."""
    return f"cd {shlex.quote(release)} && runuser -u {shlex.quote(app.user)} -- php artisan {command} --no-interaction"


def prepare(app: AppLike, release: str) -> str:
    """Laravel's caches, built against the release's own path and the shared .env."""
    return " && ".join(artisan(app, release, cache) for cache in CACHES)


def reload(app: AppLike) -> str:
    """A graceful PHP-FPM reload: running requests finish, new workers start with an empty OPcache."""
    return "systemctl reload 'php*-fpm.service'"


def restart_workers(app: AppLike) -> str:
    """Workers on Redis queues restart after their current job (every host's, through the shared cache); any
    that are not running are started."""
    return f"{artisan(app, app.current, 'queue:restart')} && {supervisor_start(app)}"


RUNTIME = Runtime("laravel", build=build, prepare=prepare, reload=reload, restart_workers=restart_workers,
                  packages=("php-laravel-framework",), front=FASTCGI)

"""This repo's Invoke entry: ``inv deploy``, ``inv verify``, ... are fabstack's tasks (``fabstack/cli/tasks.py``); an
installed fabstack offers the same as the ``fabstack`` command."""

from fabstack.cli.tasks import namespace

__all__ = ["namespace"]

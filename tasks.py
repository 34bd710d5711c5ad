"""This repo's Invoke entry: ``inv deploy``, ``inv verify``, ... are fabstack's tasks (``fabstack/cli.py``); an
installed fabstack offers the same as the ``fabstack`` command."""

from fabstack.cli import namespace

__all__ = ["namespace"]

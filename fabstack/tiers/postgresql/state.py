"""What one PostgreSQL host says about itself, as every day-2 command of the tier reads it (manual or Patroni)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DbState:
    """What one database host says about itself."""

    name: str
    up: bool = False
    in_recovery: bool = False
    paused: bool = False
    receiver: str = ""
    lsn: str = ""
    timeline: int = 0
    lag_bytes: int = 0
    lag_seconds: float = 0.0
    sync_names: str = ""
    note: str = ""

    @property
    def role(self) -> str:
        """primary, replica or down."""
        if not self.up:
            return "down"
        return "replica" if self.in_recovery else "primary"

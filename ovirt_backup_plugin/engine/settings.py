"""How to reach an engine: the ``[engine]`` section of the settings, validated."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["EngineSettings"]


@dataclass(frozen=True)
class EngineSettings:
    url: str
    username: str = "admin@internal"
    password: Optional[str] = None
    ca_file: Optional[str] = None
    insecure: bool = False
    timeout: int = 300                     # seconds per request (0: wait for ever)
    page_size: int = 100                   # VMs per page of GET /vms?all_content=true
    retries: int = 2                       # extra attempts for idempotent reads
    retry_delay: float = 1.0               # first back-off, doubled per attempt

    def __repr__(self) -> str:             # never show the password
        return f"EngineSettings(url={self.url!r}, username={self.username!r}, password=***)"

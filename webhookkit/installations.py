"""App installations from a manifest: the durable record of each attempt (Saleor's
``AppInstallation``), kept by every store so a restart still knows what happened."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

__all__ = ["AppInstallation", "InstallationStatus"]


class InstallationStatus(enum.StrEnum):
    """``pending`` while the manifest is fetched and the token handed over; then one of the
    final two. Saleor's ``JobStatusEnum`` calls ``installed`` ``SUCCESS``."""

    PENDING = "pending"
    INSTALLED = "installed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class AppInstallation:
    """One installation: what was asked (name, manifest URL, permissions), its status, the
    reason of a failure (``message``) and, once installed, the app's id."""

    id: str
    app_name: str
    manifest_url: str
    status: InstallationStatus
    created_at: datetime
    updated_at: datetime
    permissions: frozenset[str] = frozenset()
    activate_after_installation: bool = True
    message: str | None = None
    app_id: str | None = None

    @property
    def is_final(self) -> bool:
        return self.status is not InstallationStatus.PENDING

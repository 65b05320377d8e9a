"""Which optional extra a target URL's scheme needs, for an install hint instead of a bare
"no transport for scheme"."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping

__all__ = ["EXTRAS", "missing_extra_hint"]

#: scheme -> (the extra that provides its transport, the module that extra installs)
EXTRAS: Mapping[str, tuple[str, str]] = {
    "awssqs": ("sqs", "aioboto3"),
    "gcpubsub": ("pubsub", "gcloud.aio.pubsub"),
}


def installed(module: str) -> bool:
    """True if ``module`` can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package, or sys.modules[...] = None
        return False


def missing_extra_hint(
    scheme: str, *, is_installed: Callable[[str], bool] = installed
) -> str | None:
    """``"pip install 'webhookkit[sqs]'"``-style advice when ``scheme``'s transport needs an
    extra that is not installed; None when the scheme needs no extra or it is installed."""
    found = EXTRAS.get(scheme.lower()) if isinstance(scheme, str) else None
    if found is None:
        return None
    extra, module = found
    if is_installed(module):
        return None
    return (
        f"{scheme.lower()}:// needs the {extra!r} extra ({module}): "
        f"pip install 'webhookkit[{extra}]'"
    )

"""Settings of the example shop. The database comes from ``SHOP_DATABASE_URL``:
``postgresql://user@host:port/name`` (or ``?host=/socket/dir&port=N``) or ``sqlite:///path``."""

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent


def database(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": unquote(parts.path)}
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": query.get("host", parts.hostname or ""),
        "PORT": query.get("port", str(parts.port or "")),
    }


SECRET_KEY = os.environ.get("SHOP_SECRET_KEY", "example-only-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
INSTALLED_APPS = ["webhookkit.integrations.django", "orders"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "shop_site.urls"
DATABASES = {
    "default": database(os.environ.get("SHOP_DATABASE_URL", f"sqlite:///{BASE_DIR / 'shop.db'}"))
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

WEBHOOKKIT = {
    "store": "django",  # the webhook rows live in DATABASES["default"], beside the orders
    "domain": "shop.example.com",
    "signing_key_file": os.environ.get("SHOP_SIGNING_KEY_FILE"),
    # Webhooks to loopback receivers are refused unless allowed (the SSRF guard).
    "allow_addresses": ["127.0.0.1/32"],
}

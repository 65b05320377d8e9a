"""``events`` (the catalogue) and ``keys generate|jwks|rotate`` (JWS signing keys)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..events import EventKind, EventRegistry
from ..exceptions import ConfigurationError
from ..signing import KeySet, generate_key
from ._common import add_key_options, key_set, signing_key

__all__ = ["register"]

ALGORITHMS = ["RS256", "ES256", "EdDSA"]


def _events(args: argparse.Namespace) -> int:
    registry = EventRegistry.saleor()
    rows = [e for e in registry if args.kind is None or e.kind is EventKind(args.kind)]
    if args.json:
        doc = [
            {
                "name": e.name,
                "value": e.value,
                "kind": e.kind.value,
                "permission": e.permission,
                "subscription_type": e.subscription_type,
            }
            for e in rows
        ]
        print(json.dumps(doc, indent=1))
    else:
        for e in rows:
            print(f"{e.name:<45} {e.kind.value:<5} {e.permission or '-':<38} {e.description}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    """Print a new private key (PEM) to stdout, or write it to --out."""
    pem = generate_key(args.alg).private_pem()
    if args.out:
        _write_private(args.out, pem)
        print(f"wrote {args.alg} private key to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(pem.decode("ascii"))
    return 0


def _jwks(args: argparse.Namespace) -> int:
    keys = key_set(args)
    if keys is None:
        raise ConfigurationError(
            "jwks: pass --signing-key-file or --signing-key-env", field="signing_key_file"
        )
    print(json.dumps(keys.jwks(), indent=1))
    return 0


def _rotate(args: argparse.Namespace) -> int:
    """Step 1 of a rotation: write a new key beside the current one and print the JWKS that
    publishes both (the current key keeps signing until you switch ``--signing-key-file``)."""
    current = signing_key(args)
    if current is None:
        raise ConfigurationError(
            "rotate: pass the current key with --signing-key-file or --signing-key-env",
            field="signing_key_file",
        )
    new = generate_key(args.alg)
    _write_private(args.new_key_file, new.private_pem())
    keys = KeySet([current])
    keys.add(new)
    doc: dict[str, Any] = keys.jwks()
    print(json.dumps(doc, indent=1))
    print(
        f"new key {new.kid} written to {args.new_key_file}; publish this JWKS, wait for "
        "receivers' caches (max-age), then sign with the new key file",
        file=sys.stderr,
    )
    return 0


def _write_private(path: str, pem: bytes) -> None:
    """Create ``path`` readable by its owner only; never overwrite a key."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


def register(sub: Any) -> None:
    events = sub.add_parser(
        "events", help="list the event catalogue", description="List Saleor's event catalogue."
    )
    events.add_argument("--kind", choices=["async", "sync"], help="only async or sync events")
    events.add_argument("--json", action="store_true", help="print JSON instead of a table")
    events.set_defaults(func=_events)

    keys = sub.add_parser(
        "keys",
        help="JWS signing keys: generate, jwks, rotate",
        description="Make and publish JWS signing keys. Without a subcommand: generate.",
    )
    keys.add_argument("--alg", default="RS256", choices=ALGORITHMS, help=argparse.SUPPRESS)
    keys.set_defaults(func=_generate, out=None)
    actions = keys.add_subparsers(dest="keys_command", metavar="{generate,jwks,rotate}")

    gen = actions.add_parser(
        "generate", help="print (or write) a new private key in PEM", description=_generate.__doc__
    )
    gen.add_argument("--alg", default="RS256", choices=ALGORITHMS)
    gen.add_argument("--out", metavar="FILE", help="write to FILE (mode 0600) instead of stdout")
    gen.set_defaults(func=_generate)

    jwks = actions.add_parser(
        "jwks", help="print the JWKS (public keys) of a key", description="Print a JWKS."
    )
    add_key_options(jwks)
    jwks.set_defaults(func=_jwks)

    rotate = actions.add_parser(
        "rotate", help="make the next key and print the JWKS with both", description=_rotate.__doc__
    )
    add_key_options(rotate)
    rotate.add_argument("--new-key-file", required=True, metavar="FILE", help="where to write it")
    rotate.add_argument("--alg", default="RS256", choices=ALGORITHMS)
    rotate.set_defaults(func=_rotate)

    # Kept from the first CLI: ``jwks`` at the top level.
    top_jwks = sub.add_parser("jwks", help="same as keys jwks", description="Print a JWKS.")
    add_key_options(top_jwks)
    top_jwks.set_defaults(func=_jwks)

from __future__ import annotations

import subprocess
import sys

import webhookkit
from webhookkit import exceptions


def test_all_is_sorted_unique_and_importable() -> None:
    names = webhookkit.__all__
    assert names == sorted(names)
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(webhookkit, name), name


def test_every_exception_derives_from_the_root() -> None:
    for name in exceptions.__all__:
        cls = getattr(exceptions, name)
        assert issubclass(cls, webhookkit.WebhookKitError), name
        assert name in exceptions.__doc__, f"{name} missing from the tree in the docstring"


def test_configuration_errors_are_value_errors() -> None:
    assert issubclass(webhookkit.ConfigurationError, ValueError)


def test_import_does_not_load_optional_dependencies() -> None:
    code = (
        "import sys, webhookkit; "
        "heavy = [m for m in ('aioboto3', 'gcloud', 'asyncpg', 'graphql') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_package_ships_type_information() -> None:
    from importlib import resources

    assert resources.files("webhookkit").joinpath("py.typed").is_file()

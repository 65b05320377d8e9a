"""A throwaway PostgreSQL server: ``initdb`` + ``pg_ctl`` in a temporary directory.

Used by the store tests and by ``benchmarks/bench_stores.py``. PostgreSQL refuses to run as
root, so as root every server command runs through ``runuser -u postgres --`` on a directory
owned by ``postgres``. The server listens on 127.0.0.1 on a free port and on a unix socket
inside the temporary directory; :meth:`PostgresCluster.stop` removes everything.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

__all__ = ["INSTALL_HINT", "PostgresCluster", "PostgresUnavailableError"]

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) were not found. Install them, e.g. "
    "'apt-get install -y postgresql' on Debian/Ubuntu, and put their directory "
    "(/usr/lib/postgresql/<version>/bin) on PATH."
)

#: Settings for tests: durability is pointless for a server deleted at the end of the run.
FAST: Mapping[str, str] = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class PostgresUnavailableError(RuntimeError):
    """The server could not be found or started; the message says why and how to fix it."""


def _find_binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    # Debian keeps server binaries off PATH, one directory per major version.
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if candidates:
        return candidates[-1]
    raise PostgresUnavailableError(INSTALL_HINT)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    """One running server; :meth:`dsn` names a database on it (as superuser ``postgres``)."""

    def __init__(self, root: Path, port: int, as_postgres: Sequence[str]) -> None:
        self.root = root
        self.data = root / "data"
        self.socket_dir = root
        self.log = root / "server.log"
        self.port = port
        self._as_postgres = list(as_postgres)
        self._pg_ctl = _find_binary("pg_ctl")
        self._running = False

    @classmethod
    def start(cls, settings: Mapping[str, str] = FAST) -> PostgresCluster:
        """initdb a fresh cluster in a temporary directory and start it; wait until ready."""
        initdb = _find_binary("initdb")
        as_postgres: list[str] = []
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if runuser is None:
                raise PostgresUnavailableError(
                    "running as root, and PostgreSQL refuses root: 'runuser' (util-linux) is "
                    "needed to start it as the 'postgres' user"
                )
            as_postgres = [runuser, "-u", "postgres", "--"]
        root = Path(tempfile.mkdtemp(prefix="webhookkit-pg-"))
        cluster = cls(root, _free_port(), as_postgres)
        try:
            if as_postgres:
                shutil.chown(root, user="postgres", group="postgres")
            cluster._run(
                initdb,
                "-D",
                str(cluster.data),
                "--username=postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            )
            conf = {
                "port": str(cluster.port),
                "listen_addresses": "'127.0.0.1'",
                "unix_socket_directories": f"'{cluster.socket_dir}'",
                "max_connections": "200",
                **settings,
            }
            with (cluster.data / "postgresql.conf").open("a") as fh:
                fh.writelines(f"{key} = {value}\n" for key, value in conf.items())
            cluster._run(
                cluster._pg_ctl, "-D", str(cluster.data), "-l", str(cluster.log), "-w", "start"
            )
            cluster._running = True
        except BaseException:
            cluster.stop()
            raise
        atexit.register(cluster.stop)  # a crashed test run must not leave a server behind
        return cluster

    def _run(self, *argv: str) -> None:
        try:
            subprocess.run(
                [*self._as_postgres, *argv],
                check=True,
                capture_output=True,
                text=True,
                timeout=120,
                cwd=self.root,
            )
        except FileNotFoundError as exc:
            raise PostgresUnavailableError(f"{exc}; {INSTALL_HINT}") from exc
        except subprocess.CalledProcessError as exc:
            log = self.log.read_text() if self.log.exists() else ""
            raise PostgresUnavailableError(
                f"{Path(argv[0]).name} failed ({exc.returncode}): {exc.stderr.strip()}\n"
                f"{log[-2000:]}"
            ) from exc

    def dsn(self, database: str = "postgres") -> str:
        """A libpq URL over the unix socket in the temporary directory."""
        return f"postgresql://postgres@/{database}?host={self.socket_dir}&port={self.port}"

    def tcp_dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @contextlib.asynccontextmanager
    async def database(self) -> AsyncIterator[str]:
        """Create an empty database, yield its DSN, drop it afterwards."""
        import asyncpg

        name = f"wk_{uuid.uuid4().hex[:16]}"
        admin = await asyncpg.connect(self.dsn())
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
            yield self.dsn(name)
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection is cut, the data stays (fault tests)."""
        self._run(
            self._pg_ctl, "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w", "restart"
        )

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory; safe to call twice."""
        if self._running:
            self._running = False
            try:
                self._run(self._pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop")
            except PostgresUnavailableError:
                self._run(self._pg_ctl, "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def __repr__(self) -> str:
        return f"PostgresCluster(port={self.port}, root={str(self.root)!r})"

"""A private PostgreSQL 15 cluster for a test session: initdb'd into a folder of its own, on a free port,
password authentication, stopped (and its folder removed) at the end. Never the system's cluster.

initdb refuses to run as root, and CI runs as root: then every server command runs as the `postgres`
user that Debian's postgresql-15 package creates (`runuser -u postgres --`), in a folder it owns.
That folder is made in the system's temporary directory, not under pytest's tmp_path: postgres
cannot traverse /tmp/pytest-of-root (0700). The server's log is copied to `folder` when it stops.
"""

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import adbc_driver_postgresql
import adbc_driver_postgresql.dbapi

from tests.server import free_port

BIN = Path("/usr/lib/postgresql/15/bin")
"""Debian's postgresql-15 binaries (initdb, pg_ctl and the server), which are not on PATH."""


class PostgresServer:
    """PostgreSQL 15 on 127.0.0.1 and a unix socket, superuser `user` with `password` (SCRAM), and a
    database `database` owned by it. Durability is off (fsync, synchronous_commit, full_page_writes):
    a crash loses the cluster, which lives for one session anyway."""

    host = "127.0.0.1"
    user = "modelyard"
    password = "pg-test-secret"
    database = "modelyard"

    def __init__(self, folder: Path) -> None:
        if not (BIN / "initdb").exists():
            raise RuntimeError(
                f"PostgreSQL 15 is not installed (no {BIN / 'initdb'}): run `make setup`, which "
                "installs it (apt-get install postgresql-15), or install it yourself"
            )
        self.as_postgres: list[str] = []
        if os.geteuid() == 0:  # initdb and the server refuse root
            if shutil.which("runuser") is None:
                raise RuntimeError(
                    "running as root needs runuser (util-linux) to start PostgreSQL as postgres"
                )
            self.as_postgres = ["runuser", "-u", "postgres", "--"]
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.port = free_port()
        self.uri = f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"
        self.home: Path | None = None  # data/, the socket, the log: made by start()

    @property
    def socket_dir(self) -> Path:
        """Where the unix socket is (`host=` this folder in a libpq URI)."""
        assert self.home is not None, "not started"
        return self.home

    def start(self) -> "PostgresServer":
        """A new cluster: initdb, the server started, the database created."""
        self.home = Path(tempfile.mkdtemp(prefix="modelyard-pg-"))
        (self.home / "pwfile").write_text(self.password + "\n")
        if self.as_postgres:
            shutil.chown(self.home, "postgres", "postgres")
            shutil.chown(self.home / "pwfile", "postgres", "postgres")
        self._run(
            BIN / "initdb",
            "--pgdata",
            self.home / "data",
            "--username",
            self.user,
            "--pwfile",
            self.home / "pwfile",
            "--auth",
            "scram-sha-256",
            "--encoding",
            "UTF8",
            "--no-locale",
            "--no-sync",
        )
        (self.home / "pwfile").unlink()
        self.start_again()
        self.execute(f'CREATE DATABASE "{self.database}"', database="postgres")
        return self

    def start_again(self) -> "PostgresServer":
        """The server of the existing cluster started (after stop_now), on the same port."""
        assert self.home is not None, "start() first"
        options = [
            f"-p {self.port}",
            f"-k {self.home}",
            f"-c listen_addresses={self.host}",
            "-c fsync=off",
            "-c synchronous_commit=off",
            "-c full_page_writes=off",
        ]
        self._run(
            BIN / "pg_ctl",
            "start",
            "--pgdata",
            self.home / "data",
            "--log",
            self.home / "postgres.log",
            "--wait",
            "--timeout",
            "60",
            "-o",
            " ".join(options),
        )
        return self

    def stop_now(self) -> None:
        """The server stopped at once (`-m immediate`: no shutdown checkpoint, clients cut off), as
        when PostgreSQL goes away mid-job; the cluster stays for start_again()."""
        self._pg_ctl_stop("immediate")

    def stop(self) -> None:
        """The server stopped (`-m fast`: open sessions rolled back), its log copied to `folder`
        and its cluster removed."""
        if self.home is None:
            return
        try:
            self._pg_ctl_stop("fast")
        finally:
            log = self.home / "postgres.log"
            if log.exists():
                shutil.copyfile(log, self.folder / "postgres.log")
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None

    def connect(self, database: str | None = None, autocommit: bool = True) -> Any:
        """An ADBC DB-API connection (the product's driver) as the superuser."""
        uri = self.uri if database is None else self.uri.rsplit("/", 1)[0] + "/" + database
        return adbc_driver_postgresql.dbapi.connect(uri, autocommit=autocommit)

    def execute(self, sql: str, database: str | None = None) -> None:
        """One statement, or several separated by semicolons, in autocommit."""
        with self.connect(database) as connection, connection.cursor() as cursor:
            cursor.executescript(sql)

    def query(self, sql: str, database: str | None = None) -> list[tuple[Any, ...]]:
        """The rows of one statement, as tuples. Without the driver's COPY optimisation, so that
        SHOW and other statements COPY cannot wrap work too."""
        no_copy = {adbc_driver_postgresql.StatementOptions.USE_COPY.value: "false"}
        with self.connect(database) as connection, connection.cursor(adbc_stmt_kwargs=no_copy) as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())

    def _pg_ctl_stop(self, mode: str) -> None:
        if self.home is None or not (self.home / "data" / "postmaster.pid").exists():
            return
        self._run(BIN / "pg_ctl", "stop", "--pgdata", self.home / "data", "--mode", mode, "--wait")

    def _run(self, *command: str | Path) -> None:
        started = time.monotonic()
        result = subprocess.run(
            [*self.as_postgres, *map(str, command)], capture_output=True, text=True, cwd=self.home
        )
        if result.returncode != 0:
            log = self.home / "postgres.log" if self.home else None
            raise RuntimeError(
                f"{Path(str(command[0])).name} {command[1] if len(command) > 1 else ''} failed "
                f"after {time.monotonic() - started:.1f} s (exit {result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
                + (f"\nserver log:\n{log.read_text()}" if log and log.exists() else "")
            )

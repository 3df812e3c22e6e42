"""A private PostgreSQL server for MLflow's backend store: ``initdb`` into a folder, ``pg_ctl start`` on 127.0.0.1.

It listens on one loopback port only (``listen_addresses=127.0.0.1``) and keeps its unix socket inside its own
folder, so it never meets a system PostgreSQL. Passwords (scram-sha-256) are random per folder and kept in
``credentials.json`` (mode 0600) beside the data, so a stopped server starts again with the same URI.

PostgreSQL refuses to run as root. Run as root, the server runs as a service user (``postgres``, or
``$MATTA_POSTGRES_USER``) through ``runuser``, and its data folder is owned by that user; if the user cannot reach
the folder asked for (e.g. under a 0700 home or pytest's 0700 temp root), the data goes to a fresh folder under
the system temp dir instead, which stop_postgres removes. Run as anyone else, the server runs as that user.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from matta_core.tracking.errors import TrackingError
from matta_core.tracking.local_server import ensure_port_free, free_port, log_tail

STARTUP_TIMEOUT_S = 30.0
SERVICE_USER_ENV = "MATTA_POSTGRES_USER"
SUPERUSER = "postgres"
CREDENTIALS_FILE = "credentials.json"


@dataclass
class PostgresServer:
    """A running server; ``sqlalchemy_uri`` is what ``mlflow server --backend-store-uri`` takes."""

    port: int
    folder: Path  # holds data/, socket/, postgres.log and credentials.json
    database: str
    user: str
    password: str
    superuser_password: str
    pid: int  # the postmaster (not our child: pg_ctl detaches it)
    run_as: str | None  # the service user when started as root, else None
    temporary: bool  # folder is a temp folder of ours (root, requested folder unreachable): removed on stop
    kept_log: Path  # where the log stays after stop (for a temporary folder, a copy beside the requested one)
    host: str = "127.0.0.1"

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def log_path(self) -> Path:
        return self.folder / "postgres.log"

    @property
    def sqlalchemy_uri(self) -> str:
        return f"postgresql+psycopg2://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def connect_kwargs(self, *, superuser: bool = False) -> dict[str, str | int]:
        """Keyword arguments for ``psycopg2.connect`` (the MLflow user, or the superuser on its database)."""
        if superuser:
            return {"host": self.host, "port": self.port, "dbname": "postgres", "user": SUPERUSER,
                    "password": self.superuser_password}
        return {"host": self.host, "port": self.port, "dbname": self.database, "user": self.user,
                "password": self.password}


def start_postgres(root: Path, *, port: int | None = None, database: str = "mlflow", user: str = "mlflow",
                   startup_timeout_s: float = STARTUP_TIMEOUT_S, options: dict[str, str] | None = None,
                   ) -> PostgresServer:
    """Initialise (first time) and start a server under ``root/postgres``, with `database` owned by `user`.

    `options` are extra server settings (``-c name=value``). On any failure everything started is stopped and a
    `TrackingError` says what happened, with the last lines of the server's log.
    """
    if port is not None:
        ensure_port_free(port, "PostgreSQL")
    run_as = _service_user()
    _check_existing(root / "postgres")
    folder, temporary = _folder(root / "postgres", run_as)
    kept_log = (root / "postgres" if temporary else folder) / "postgres.log"
    chosen = port or free_port()
    server: PostgresServer | None = None
    try:
        superuser_password, password = _init(folder, run_as, kept_log)
        _pg_ctl_start(folder, chosen, run_as, startup_timeout_s, options or {}, kept_log)
        server = PostgresServer(chosen, folder, database, user, password, superuser_password,
                                _postmaster_pid(folder), run_as, temporary, kept_log)
        _create_database(server)
        return server
    except BaseException:
        if server is not None:
            stop_postgres(server)
        else:
            _stop_folder(folder, run_as)
            if temporary:
                _discard(folder, kept_log)
        raise


def stop_postgres(server: PostgresServer, timeout_s: float = 30.0) -> None:
    """``pg_ctl stop -m fast``; if that fails, an immediate stop, then SIGKILL of the postmaster we started."""
    _stop_folder(server.folder, server.run_as, timeout_s)
    # pg_ctl returns once postmaster.pid is gone, a moment before the process itself has exited.
    deadline = time.monotonic() + 10
    while pid_running(server.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_running(server.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.pid, signal.SIGKILL)
    if server.temporary:
        _discard(server.folder, server.kept_log)


def _discard(folder: Path, kept_log: Path) -> None:
    """Remove a temporary server folder, keeping a copy of its log where the error messages say it is."""
    with contextlib.suppress(OSError):
        shutil.copyfile(folder / "postgres.log", kept_log)
    shutil.rmtree(folder, ignore_errors=True)


def _service_user() -> str | None:
    if os.geteuid() != 0:
        return None
    name = os.environ.get(SERVICE_USER_ENV, "postgres")
    try:
        pwd.getpwnam(name)
    except KeyError:
        raise TrackingError(f"PostgreSQL refuses to run as root and the service user {name!r} does not exist: "
                            f"create it (useradd --system {name}), set ${SERVICE_USER_ENV} to another non-root "
                            "user, or run as a non-root user") from None
    if shutil.which("runuser") is None:
        raise TrackingError("PostgreSQL refuses to run as root, and runuser (util-linux), which runs it as "
                            f"{name!r}, is not installed: install util-linux or run as a non-root user")
    return name


def _as_user(run_as: str | None, command: list[str]) -> list[str]:
    return command if run_as is None else ["runuser", "-u", run_as, "--", *command]


def _binary(name: str) -> str:
    """A PostgreSQL server binary: on PATH, else the newest Debian-style /usr/lib/postgresql/<major>/bin."""
    found = shutil.which(name)
    if found is None:
        candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                            key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
        found = str(candidates[-1]) if candidates else None
    if found is None:
        raise TrackingError(f"PostgreSQL's {name} was not found on PATH or under /usr/lib/postgresql/*/bin: "
                            "install the PostgreSQL server (Debian: apt-get install postgresql)")
    return found


def _folder(wanted: Path, run_as: str | None) -> tuple[Path, bool]:
    """The server's folder, owned by whoever runs the server: `wanted`, or (root only) a temp folder if the
    service user cannot reach `wanted` (PostgreSQL needs to traverse every parent of its data dir)."""
    wanted.mkdir(parents=True, exist_ok=True)
    if run_as is None:
        return wanted, False
    reachable = subprocess.run(["runuser", "-u", run_as, "--", "test", "-x", str(wanted)],
                               capture_output=True).returncode == 0
    if not reachable and _has_data(wanted):
        raise TrackingError(f"{wanted / 'data'} holds PostgreSQL data, but the service user {run_as!r} cannot "
                            f"reach {wanted} (a parent folder is closed to it): open the parents to it (chmod o+x) "
                            "or start the stack in a folder it can reach")
    folder = wanted if reachable else Path(tempfile.mkdtemp(prefix="matta-postgres-"))
    folder.chmod(0o711)  # the service user traverses it; the credentials file in it stays root's
    (folder / "data").mkdir(mode=0o700, exist_ok=True)
    (folder / "socket").mkdir(mode=0o700, exist_ok=True)
    (folder / "postgres.log").touch()
    for path in ("data", "socket", "postgres.log"):
        shutil.chown(folder / path, run_as, run_as if _group_exists(run_as) else None)
    return folder, not reachable


def _has_data(folder: Path) -> bool:
    return (folder / "data").is_dir() and any((folder / "data").iterdir())


def _check_existing(folder: Path) -> None:
    """A data folder this stack did not create (no credentials beside it) is refused before anything starts."""
    if _has_data(folder) and not (folder / CREDENTIALS_FILE).exists():
        raise TrackingError(f"{folder / 'data'} holds files of a PostgreSQL data folder that this stack did not "
                            f"create (no {folder / CREDENTIALS_FILE}): point the stack at an empty folder or "
                            f"remove {folder / 'data'}")


def _group_exists(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _run(command: list[str], folder: Path, what: str, timeout_s: float, kept_log: Path) -> None:
    try:
        result = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise TrackingError(f"{what} did not finish within {timeout_s:g} s; the last lines of the PostgreSQL log "
                            f"({kept_log}):\n{log_tail(folder / 'postgres.log')}") from None
    if result.returncode != 0:
        output = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise TrackingError(f"{what} failed (exit {result.returncode}): {output}\nthe last lines of the PostgreSQL "
                            f"log ({kept_log}):\n{log_tail(folder / 'postgres.log')}")


def _init(folder: Path, run_as: str | None, kept_log: Path) -> tuple[str, str]:
    """initdb on first use (random passwords, kept in credentials.json); the stored passwords afterwards."""
    credentials = folder / CREDENTIALS_FILE
    data = folder / "data"
    data.mkdir(mode=0o700, exist_ok=True)
    (folder / "socket").mkdir(mode=0o700, exist_ok=True)
    if any(data.iterdir()):  # started before: _check_existing made sure the credentials are there
        stored = json.loads(credentials.read_text())
        return stored["superuser_password"], stored["password"]
    superuser_password, password = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    # initdb reads the superuser's password from a file the service user can read; it is removed right after.
    pwfile = data.parent / "socket" / "pwfile"
    pwfile.write_text(superuser_password + "\n")
    pwfile.chmod(0o600)
    if run_as is not None:
        shutil.chown(pwfile, run_as)
    try:
        _run(_as_user(run_as, [_binary("initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=scram-sha-256",
                               f"--pwfile={pwfile}", "--encoding=UTF8", "--locale=C", "--no-sync"]),
             folder, f"initdb of {data}", 120, kept_log)
    finally:
        pwfile.unlink(missing_ok=True)
    credentials.write_text(json.dumps({"superuser_password": superuser_password, "password": password}))
    credentials.chmod(0o600)
    return superuser_password, password


def _pg_ctl_start(folder: Path, port: int, run_as: str | None, timeout_s: float, options: dict[str, str],
                  kept_log: Path) -> None:
    settings = {"listen_addresses": "127.0.0.1", "port": str(port),
                "unix_socket_directories": str(folder / "socket"), **options}
    # pg_ctl hands -o to a shell: every value is quoted for it.
    server_options = " ".join(f"-c {shlex.quote(f'{name}={value}')}" for name, value in settings.items())
    _run(_as_user(run_as, [_binary("pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "postgres.log"),
                           "-o", server_options, "-w", "-t", str(max(1, round(timeout_s))), "start"]),
         folder, f"PostgreSQL on 127.0.0.1:{port} (pg_ctl start)", timeout_s + 10, kept_log)


def _postmaster_pid(folder: Path) -> int:
    return int((folder / "data" / "postmaster.pid").read_text().split()[0])


def pid_running(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting for its parent to reap it counts as ended)."""
    with contextlib.suppress(OSError, IndexError):
        # /proc/<pid>/stat: "pid (name) state ..."; the name may hold spaces, so read after the last ")".
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_folder(folder: Path, run_as: str | None, timeout_s: float = 30.0) -> None:
    """Stop whatever postmaster runs from `folder`'s data dir (fast, then immediate); nothing if none runs."""
    if not (folder / "data" / "postmaster.pid").exists():
        return
    pid: int | None = None
    with contextlib.suppress(ValueError, IndexError, OSError):
        pid = _postmaster_pid(folder)
    for mode in ("fast", "immediate"):
        command = _as_user(run_as, [_binary("pg_ctl"), "-D", str(folder / "data"), "-m", mode, "-w", "-t",
                                    str(round(timeout_s)), "stop"])
        with contextlib.suppress(subprocess.TimeoutExpired):
            if subprocess.run(command, cwd=folder, capture_output=True, timeout=timeout_s + 5).returncode == 0:
                return
    if pid is not None and pid_running(pid):  # the pid from our own data dir: the postmaster we started
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while pid_running(pid) and time.monotonic() < deadline:
            time.sleep(0.1)


def _create_database(server: PostgresServer) -> None:
    """The MLflow role and database, created once (a restarted server already has them)."""
    try:
        import psycopg2
        from psycopg2 import sql
    except ImportError:
        raise TrackingError("psycopg2 is not installed; MLflow's PostgreSQL store needs it: pip install -e "
                            "'.[local]' (psycopg2-binary)") from None
    connection = psycopg2.connect(**server.connect_kwargs(superuser=True), connect_timeout=10)
    try:
        connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (server.user,))
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(server.user)),
                               (server.password,))
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (server.database,))
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(server.database), sql.Identifier(server.user)))
    finally:
        connection.close()

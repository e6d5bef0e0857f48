"""The embedded servers start, keep data across a restart, and stop (in a scratch var/ of their own)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]


def _embedded(var: Path, action: str) -> str:
    env = {**os.environ, "PRICEMATCH_VAR": str(var)}
    out = subprocess.run(
        [sys.executable, "-m", "config.embedded", action],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture
def scratch_var():
    # Unix socket paths are limited to ~107 bytes, so keep the scratch folder short.
    import tempfile

    with tempfile.TemporaryDirectory(prefix="pmv", dir="/tmp") as d:
        var = Path(d)
        yield var
        _embedded(var, "stop")


def test_services_start_survive_a_restart_with_data_and_stop(scratch_var):
    out = _embedded(scratch_var, "start")
    db_url = out.split("PostgreSQL: ")[1].split()[0]
    sock = scratch_var / "redis" / "redis.sock"

    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute("SELECT extname FROM pg_extension WHERE extname='vector'").fetchone()
        conn.execute("CREATE TABLE kept (v vector(3))")
        conn.execute("INSERT INTO kept VALUES ('[1,2,3]')")
    r = redis.Redis(unix_socket_path=str(sock))
    r.set("kept", "yes")
    r.close()

    _embedded(scratch_var, "stop")
    assert "postgres: stopped" in _embedded(scratch_var, "status")
    assert "redis: stopped" in _embedded(scratch_var, "status")

    _embedded(scratch_var, "start")
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT v::text FROM kept").fetchone()[0] == "[1,2,3]"
    assert redis.Redis(unix_socket_path=str(sock)).get("kept") == b"yes"
    assert "postgres: running" in _embedded(scratch_var, "status")

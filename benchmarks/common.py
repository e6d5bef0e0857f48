"""What every benchmark section shares: the bench database, result files, timing helpers.

Sections that touch the database never use the dev or test data: they run against the
`pricematch_bench` database on the same server and Redis logical databases 4-6
(REDIS_DB_OFFSET=4), with media under var/bench/. `bench_env()` is applied to os.environ
before Django is imported, so the driver and every worker it starts see the same setup.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import matcher.pipeline.runtime  # noqa: F401  (idle OpenMP threads sleep: set before anything loads torch)

REPO = Path(__file__).resolve().parents[1]
VAR = REPO / "var"
BENCH_VAR = Path(os.environ.get("BENCH_VAR") or VAR / "bench")
RESULTS = Path(__file__).resolve().parent / "results.json"
BENCH_DB = "pricematch_bench"
# Redis logical databases offset..offset+2 (broker, cache, rate limiter); $BENCH_REDIS_DB_OFFSET moves
# them when another job on the machine already uses 4-6.
BENCH_REDIS_OFFSET = int(os.environ.get("BENCH_REDIS_DB_OFFSET") or 4)


# --- environment ------------------------------------------------------------------------------------


def bench_database_url() -> str:
    """$BENCH_DATABASE_URL, else the bench database on the embedded server under var/pg."""
    from config import embedded

    return os.environ.get("BENCH_DATABASE_URL") or f"postgresql://postgres:@/{BENCH_DB}?host={embedded.PG_DIR}"


def bench_env() -> dict[str, str]:
    BENCH_VAR.mkdir(parents=True, exist_ok=True)
    return {
        "DATABASE_URL": bench_database_url(),
        "REDIS_DB_OFFSET": str(BENCH_REDIS_OFFSET),
        "MEDIA_ROOT": str(BENCH_VAR / "media"),
        "IMPORT_ALLOWED_ROOTS": str(BENCH_VAR),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        # One short-lived connection per request would add connect time to every query we time.
        "CONN_MAX_AGE": "600",
    }


def ensure_bench_database() -> None:
    """Create the bench database with the vector extension if it is missing (server must be running)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    url = bench_database_url()
    params = conninfo_to_dict(url)
    name = params.get("dbname", BENCH_DB)
    admin = make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")


_django_ready = False


def django_setup(*, migrate: bool = True) -> None:
    """Point this process at the bench database and Redis offset, set Django up, and migrate once."""
    global _django_ready
    if _django_ready:
        return
    from django.apps import apps

    if apps.ready:
        # Already set up by someone else (the test runner): use that configuration, change nothing.
        _django_ready = True
        return
    os.environ.update(bench_env())
    ensure_bench_database()
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)
    _django_ready = True


# --- results -----------------------------------------------------------------------------------------


def isa_tier(flags: set[str]) -> str:
    """The vector instructions the models' speed depends on, as a short label ("AVX-512, BF16").

    The VM pool's hosts all call themselves "AMD EPYC" or "Intel Xeon"; what tells them apart for
    these figures is whether float32 runs on AVX2 or AVX-512 and whether bfloat16 is native."""
    parts = ["AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"]
    if "amx_bf16" in flags:
        parts.append("AMX")
    elif "avx512_bf16" in flags:
        parts.append("BF16")
    return ", ".join(parts)


def cpu_label() -> str:
    """The CPU's model name with its ISA tier, e.g. "AMD EPYC (AVX-512, BF16)"."""
    name, flags = "", set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not name:
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            if name and flags:
                break
    except OSError:
        pass
    return f"{name} ({isa_tier(flags)})" if name and flags else name


def machine() -> dict[str, Any]:
    cpu = cpu_label()
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    import torch

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "niceness": os.getpriority(os.PRIO_PROCESS, 0),
        "shared": "a 2-core VM shared with other agents' test and build jobs; see sections.*.load_average",
    }


def load_results(path: Path = RESULTS) -> dict[str, Any]:
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            return {}
    return {}


def save_results(results: dict[str, Any], path: Path = RESULTS) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2, ensure_ascii=False, sort_keys=True, default=str) + "\n")
    tmp.replace(path)


# --- timing ------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else float("nan")


@dataclass
class Rate:
    """Items per wall-clock second, and CPU seconds per item (this process plus its children).

    On a machine shared with other jobs wall time depends on the neighbours; CPU time per item
    is the steadier figure, and `load` records how busy the machine was.
    """

    items: int
    wall_s: float
    cpu_s: float
    load: float = field(default_factory=lambda: os.getloadavg()[0])

    @property
    def per_second(self) -> float:
        return self.items / self.wall_s if self.wall_s > 0 else float("nan")

    @property
    def cpu_per_item(self) -> float:
        return self.cpu_s / self.items if self.items else float("nan")


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def cpu_speed(seconds: float = 1.0) -> float:
    """This core's speed right now: GFLOP per CPU second of a one-thread float32 1024² matmul.

    The machine is a VM whose CPU time per unit of work drifts by up to ~40 % over an hour
    (neighbours on the host); runs compared with each other should be compared at like speed, so
    the long sections record this before and after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
        torch.mm(a, b)
        start, n = time.process_time(), 0
        while time.process_time() - start < seconds:
            torch.mm(a, b)
            n += 1
        return round(2 * 1024**3 * n / (time.process_time() - start) / 1e9, 1)
    finally:
        torch.set_num_threads(threads)


def measure(fn: Callable[[], Any], items: int) -> Rate:
    cpu, wall = _cpu_seconds(), time.perf_counter()
    fn()
    return Rate(items=items, wall_s=time.perf_counter() - wall, cpu_s=_cpu_seconds() - cpu)


def measure_steady(fn: Callable[[], Any], items: int, repeats: int = 3) -> Rate:
    """The median (by CPU time) of `repeats` measured passes: a worker's steady state, not one pass
    that may carry a first-call allocation or a neighbour's burst."""
    rates = sorted((measure(fn, items) for _ in range(repeats)), key=lambda r: r.cpu_s)
    return rates[len(rates) // 2]


# Files the bench itself rewrites: their changes do not make a run's code differ from its revision.
BENCH_OUTPUTS = ("benchmarks/results.json", "benchmarks/README.md", "README.md")


def git_revision(repo: Path | None = None) -> str:
    """The short commit the code ran from, with "+changes" when tracked files differ from it."""
    repo = repo or REPO
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True,
                             check=True).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "."]
            + [f":(exclude){p}" for p in BENCH_OUTPUTS],
            cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return f"{rev}+changes" if changed else rev


def bench_merchandiser():  # noqa: ANN201 - a Django User, imported after setup
    """The merchandiser the page benchmarks log in as (created once in the bench database)."""
    from django.contrib.auth.models import Group, User

    user, created = User.objects.get_or_create(username="bench_merchandiser")
    if created:
        user.set_unusable_password()
        user.save()
    user.groups.add(Group.objects.get(name="merchandiser"))
    return user

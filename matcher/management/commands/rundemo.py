"""`make demo`: migrate, create logins, load demo data, start a worker, run matching, serve the app.

Ctrl-C stops every process this command started (worker, web server, embedded services).
Running it again keeps the data: demo data is loaded once, logins are created once. The logins are
printed last, after the setup output, and kept in var/demo/logins.txt (readable by the owner only):
their passwords are shown once and stored nowhere else.
"""
from __future__ import annotations

import csv
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import cast

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import BaseCommand

from config import embedded
from matcher.demo.generate import generate
from matcher.models import MatchRun, Product
from matcher.runs import match_run_start

DEMO_USERS = [("admin", "admin", True), ("merchandiser", "merchandiser", False)]


class Command(BaseCommand):
    help = "Start the whole demo on this machine (embedded services, worker, matching, web server)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-serve", action="store_true", help="prepare and match, then exit")

    def handle(self, *args, port: int, no_serve: bool, **options) -> None:
        embedded_used = not os.environ.get("DATABASE_URL")
        if embedded_used:
            embedded.start()
        children: list[subprocess.Popen] = []

        def shutdown(*_: object) -> None:
            self.stdout.write("\n종료 중… stopping worker, web server and embedded services")
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    child.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    child.kill()
            if embedded_used:
                embedded.stop()
            sys.exit(0)

        signal.signal(signal.SIGINT, shutdown)
        signal.signal(signal.SIGTERM, shutdown)

        call_command("migrate", interactive=False, verbosity=0)
        logins = self._ensure_users()
        call_command("load_lexicon")
        call_command("collectstatic", interactive=False, verbosity=0)
        fresh = self._ensure_demo_data()

        # DEBUG stays off unless asked for (DEBUG=1 make demo): a reviewer must never see a debug page.
        env = {**os.environ, "DEBUG": os.environ.get("DEBUG", "0")}
        # -B: this one worker also runs celery beat (the periodic tasks in config/celery.py); fine on one
        # machine, while several machines run exactly one separate `celery beat` (see README).
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO",
             "-Q", "default,ingest,vision,llm", "--concurrency=2", "-n", "demo@%h",
             "-B", "--schedule", str(settings.VAR_DIR / "celerybeat-schedule")],
            env=env,
            stdout=open(settings.VAR_DIR / "worker.log", "ab"),
            stderr=subprocess.STDOUT,
        )
        children.append(worker)
        self.stdout.write(f"Celery worker started (log: {settings.VAR_DIR / 'worker.log'})")

        if fresh:
            # Small batches: the review queue starts filling within a minute instead of after a big batch.
            settings.MATCHER_BATCH_SIZE = 2
            run = match_run_start(product_ids=None, force=False, user=None)
            self.stdout.write(f"매칭 실행 #{run.pk} queued; follow it at http://127.0.0.1:{port}/matcher/runs/{run.pk}/")

        if no_serve:
            self._show_logins(logins)
            self._wait_for_runs()
            shutdown()
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            env=env,
            cwd=settings.BASE_DIR,
        )
        children.append(server)
        # runserver prints its banner as it starts: wait for it, so the address and the logins come last.
        self._wait_for_port(port, server)
        self.stdout.write(self.style.SUCCESS(f"\n  PriceMatch: http://127.0.0.1:{port}/   (Ctrl-C stops everything)\n"))
        self._show_logins(logins)
        while True:
            for child in children:
                if child.poll() is not None:
                    # Both children were started from a list of str; typeshed types Popen.args as any command.
                    command = cast("list[str]", child.args)
                    self.stderr.write(f"a child process exited ({command[2:4]}); stopping")
                    shutdown()
            time.sleep(1)

    def _ensure_users(self) -> list[tuple[str, str]]:
        """The demo logins created now, as (username, password); none when they already exist."""
        created: list[tuple[str, str]] = []
        for username, group, is_super in DEMO_USERS:
            if User.objects.filter(username=username).exists():
                continue
            password = secrets.token_urlsafe(9)
            user = User.objects.create_user(username=username, password=password, is_staff=is_super,
                                            is_superuser=is_super)
            user.groups.add(Group.objects.get(name=group))
            created.append((username, password))
        if created:
            self._keep_logins(created)
        return created

    @staticmethod
    def logins_path() -> Path:
        return Path(settings.VAR_DIR) / "demo" / "logins.txt"

    def _keep_logins(self, logins: list[tuple[str, str]]) -> None:
        """Write the new logins where their owner can read them again, and nobody else can (mode 0600)."""
        path = self.logins_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an existing file keeps its old mode through O_CREAT; this one must not
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("# PriceMatch 데모 로그인 (make demo가 만든 계정, 비밀번호는 여기에만 있습니다)\n")
            for username, password in logins:
                fh.write(f"{username} {password}\n")

    def _show_logins(self, logins: list[tuple[str, str]]) -> None:
        """The last lines of the setup: the logins made now, or where the earlier ones are kept."""
        path = self.logins_path()
        if logins:
            self.stdout.write(self.style.WARNING("  로그인 · logins (이번에만 표시 · shown once):"))
            for username, password in logins:
                self.stdout.write(self.style.WARNING(f"    {username} / {password}"))
            self.stdout.write(f"  저장 위치 · kept in {path} (소유자만 읽기 · owner-only, 0600)")
        elif path.is_file():
            self.stdout.write(f"  로그인 · logins: {path} (처음 실행 때 만든 계정 · created on the first run)")
        else:
            self.stdout.write("  로그인 · logins: 이미 있는 계정을 그대로 씁니다 (existing accounts kept)")

    def _ensure_demo_data(self) -> bool:
        if Product.objects.exists():
            self.stdout.write("demo data already loaded; keeping it")
            return False
        out = Path(settings.VAR_DIR) / "demo"
        self.stdout.write(f"generating demo data in {out} …")
        generate(out)
        call_command("import_catalog", str(out / "catalog.csv"))
        call_command("import_listings", str(out / "listings.csv"))
        self._import_a_price_below_the_floor(out)
        return True

    def _import_a_price_below_the_floor(self, out: Path) -> None:
        """Show the pricing door at work: one SKU re-imported at its cost, below cost × (1 + margin).

        The row is refused and writes nothing; the report is in the admin (가져오기 보고서)."""
        with (out / "catalog.csv").open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
        row = next((r for r in rows if r.get("cost")), None)
        if row is None:
            return
        path = out / "catalog_update_below_floor.csv"
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(row))
            writer.writeheader()
            writer.writerow({**row, "price": row["cost"], "min_price": ""})
        self.stdout.write(f"카탈로그 재가져오기 예시 · a re-import of {row['sku']} at its cost, below its floor (refused):")
        call_command("import_catalog", str(path), "--no-progress", stdout=self.stdout)

    @staticmethod
    def _wait_for_port(port: int, server: subprocess.Popen, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                time.sleep(0.3)

    def _wait_for_runs(self) -> None:
        while MatchRun.objects.filter(status__in=[MatchRun.Status.QUEUED, MatchRun.Status.RUNNING]).exists():
            time.sleep(2)

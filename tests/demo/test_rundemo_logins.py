"""`make demo` prints the two logins last and keeps them in var/demo/logins.txt, readable by the owner only."""
from __future__ import annotations

import io
import stat

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.http import HttpRequest

from matcher.management.commands.rundemo import Command

pytestmark = pytest.mark.django_db


@pytest.fixture
def var_dir(tmp_path, settings):
    settings.VAR_DIR = tmp_path
    return tmp_path


def test_the_logins_are_kept_owner_only_and_work(var_dir):
    out = io.StringIO()
    command = Command(stdout=out)

    logins = command._ensure_users()
    command._show_logins(logins)

    path = var_dir / "demo" / "logins.txt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    kept = dict(line.split(" ", 1) for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#"))
    assert set(kept) == {"admin", "merchandiser"}
    for username, password in kept.items():
        # django-axes throttles logins per request, so authenticate() needs one.
        assert authenticate(HttpRequest(), username=username, password=password) == User.objects.get(username=username)
    printed = out.getvalue()
    assert all(f"{u} / {p}" in printed for u, p in kept.items()) and str(path) in printed


def test_an_existing_file_is_made_owner_only_when_logins_are_created_again(var_dir):
    path = var_dir / "demo" / "logins.txt"
    path.parent.mkdir()
    path.write_text("old\n")
    path.chmod(0o644)

    Command(stdout=io.StringIO())._ensure_users()

    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and "old" not in path.read_text()


def test_a_second_run_creates_no_logins_keeps_the_file_and_says_where_it_is(var_dir):
    Command(stdout=io.StringIO())._ensure_users()
    path = var_dir / "demo" / "logins.txt"
    first = path.read_text()
    out = io.StringIO()
    command = Command(stdout=out)

    logins = command._ensure_users()
    command._show_logins(logins)

    assert logins == [] and path.read_text() == first
    assert str(path) in out.getvalue() and " / " not in out.getvalue()


"""Login throttling (django-axes, config/login_throttle.py): five wrong passwords lock that username from
that address for the cool-off, with a Korean page; other users and other addresses are not locked."""
from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests"  # UserFactory's
SHOP = "203.0.113.7"


def _login(client, username: str, password: str, *, address: str = SHOP, url: str | None = None):
    return client.post(url or reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def _lock(client, username: str, *, address: str = SHOP, url: str | None = None):
    responses = [_login(client, username, "wrong", address=address, url=url) for _ in range(5)]
    assert [r.status_code for r in responses[:4]] == [200] * 4  # the form again, with its error
    return responses[-1]


def test_five_wrong_passwords_lock_the_account_and_the_right_one_is_then_refused_in_korean(client):
    UserFactory(username="kim")

    fifth = _lock(client, "kim")
    right = _login(client, "kim", PASSWORD)

    for response in (fifth, right):
        body = response.content.decode()
        assert response.status_code == 429
        assert "로그인이 잠시 잠겼습니다" in body and "15분 후 다시 시도해 주세요" in body
        assert f'href="{reverse("login")}"' in body
    assert "_auth_user_id" not in client.session


def test_another_user_at_the_same_address_and_the_same_user_elsewhere_still_log_in(client):
    UserFactory(username="kim")
    UserFactory(username="lee")
    _lock(client, "kim")

    other_user = _login(client, "lee", PASSWORD)
    assert other_user.status_code == 302 and client.session["_auth_user_id"]
    client.logout()

    other_address = _login(client, "kim", PASSWORD, address="198.51.100.20")
    assert other_address.status_code == 302 and client.session["_auth_user_id"]


def test_after_the_cool_off_the_right_password_works_again(client):
    UserFactory(username="kim")
    _lock(client, "kim")
    assert _login(client, "kim", PASSWORD).status_code == 429  # still locked (and the clock restarted)

    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16))

    response = _login(client, "kim", PASSWORD)
    assert response.status_code == 302 and response["Location"] == reverse("home")


def test_a_few_typos_before_the_right_password_are_forgotten(client):
    UserFactory(username="kim")
    for _ in range(4):
        _login(client, "kim", "typo")
    assert _login(client, "kim", PASSWORD).status_code == 302
    client.logout()

    for _ in range(4):  # four more do not add up to a lock with the earlier four
        assert _login(client, "kim", "typo").status_code == 200
    assert _login(client, "kim", PASSWORD).status_code == 302


def test_the_django_admin_login_is_throttled_the_same_way(client):
    UserFactory(username="root", is_staff=True, is_superuser=True)
    admin_login = reverse("admin:login")

    _lock(client, "root", url=admin_login)
    response = _login(client, "root", PASSWORD, url=admin_login)

    assert response.status_code == 429 and "15분 후 다시 시도해 주세요" in response.content.decode()


def test_the_limits_come_from_the_settings(client, settings):
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(minutes=5)
    UserFactory(username="kim")

    assert _login(client, "kim", "wrong").status_code == 200
    response = _login(client, "kim", "wrong")

    assert response.status_code == 429 and "5분 후 다시 시도해 주세요" in response.content.decode()

"""Who may do what (config/roles.py): one check everywhere, and a clear Korean 403 page when refused."""

from __future__ import annotations

import pytest
from django.urls import reverse

from config import roles
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def merchandiser():
    return UserFactory(username="merch-lee", groups=["merchandiser"])


def test_roles_come_from_the_groups_and_superusers_are_admins():
    plain = UserFactory(username="plain")
    admin = UserFactory(username="boss", groups=["admin"])
    root = UserFactory(username="root", is_superuser=True)
    merch = merchandiser()

    assert [roles.role(u) for u in (plain, merch, admin, root)] == [None, "merchandiser", "admin", "admin"]
    assert [roles.is_admin(u) for u in (plain, merch, admin, root)] == [False, False, True, True]
    assert [roles.is_merchandiser(u) for u in (plain, merch, admin, root)] == [False, True, True, True]


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", reverse("review:calibration")),
        ("get", reverse("review:quality")),
        ("post", reverse("review:thresholds_save")),
        ("post", reverse("review:audit_draw")),
        ("post", reverse("pricing:run_start")),
        ("post", reverse("pricing:proposals_bulk")),  # deciding one proposal: tests/pricing/test_proposal_deciders.py
        ("post", reverse("matcher:run_start")),
        ("post", reverse("matcher:run_resume", args=[1])),
    ],
)
def test_a_merchandiser_on_an_admin_page_gets_the_korean_403_page_not_the_login(client, method, url):
    client.force_login(merchandiser())

    response = getattr(client, method)(url)

    body = response.content.decode()
    assert response.status_code == 403
    assert "<html" in body and "권한이 없습니다" in body and "관리자" in body
    assert f'href="{reverse("home")}"' in body  # a way back


def test_an_htmx_request_gets_only_the_short_message(client):
    client.force_login(merchandiser())

    response = client.get(reverse("review:calibration"), **HTMX)

    body = response.content.decode()
    assert response.status_code == 403
    assert "<html" not in body and 'id="forbidden-reason"' in body and "관리자" in body


def test_a_user_without_a_role_is_refused_the_review_queue_with_the_reason(client):
    client.force_login(UserFactory(username="plain"))

    response = client.get(reverse("review:queue"))

    assert response.status_code == 403 and "검토 권한이 없습니다" in response.content.decode()


def test_the_admin_links_follow_the_same_check(client):
    client.force_login(merchandiser())
    assert "기준 보정" not in client.get(reverse("review:queue")).content.decode()

    client.force_login(UserFactory(username="boss", groups=["admin"]))
    assert "기준 보정" in client.get(reverse("review:queue")).content.decode()

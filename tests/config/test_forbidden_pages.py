"""Refusals are the Korean 403 page with the reason and a way back: a view's PermissionDenied, a failed
CSRF check, and a logged-in user without staff rights in the Django admin (config/admin_site.py), where
Django itself would send them to its login form. Anonymous visitors still go to the login form."""
from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory
from django.urls import reverse
from django.views import defaults

from pricing.models import PricingPolicy
from tests.factories import UserFactory
from tests.pricing.factories import pricing_admin, pricing_merchandiser

pytestmark = pytest.mark.django_db

POLICIES = "/admin/pricing/pricingpolicy/"


def _delete_all_policies_action() -> dict[str, object]:
    ids = [str(pk) for pk in PricingPolicy.objects.values_list("pk", flat=True)]
    assert ids, "the migration's global policy"
    return {"action": "delete_selected", "_selected_action": ids, "post": "yes"}


def _is_korean_403(response, reason: str) -> bool:
    body = response.content.decode()
    return (
        response.status_code == 403 and "<html" in body and "권한이 없습니다" in body and reason in body
        and f'href="{reverse("home")}"' in body
    )


def test_a_merchandisers_post_to_an_admin_action_is_the_korean_403_not_the_login_form(client):
    client.force_login(pricing_merchandiser(username="merch-lee"))
    before = PricingPolicy.objects.count()

    response = client.post(POLICIES, _delete_all_policies_action())

    assert _is_korean_403(response, "스태프 권한이 있는 관리자만")
    assert "no-cache" in response["Cache-Control"]
    assert PricingPolicy.objects.count() == before


@pytest.mark.parametrize("url", ["/admin/", POLICIES, "/admin/matcher/apitoken/"])
def test_a_logged_in_user_without_staff_rights_sees_the_403_on_every_admin_page(client, url):
    client.force_login(UserFactory(username="admin-role-no-staff", groups=["admin"]))

    assert _is_korean_403(client.get(url), "스태프 권한이 있는 관리자만")


def test_an_anonymous_visitor_still_goes_to_the_login_form(client):
    for response in (client.get(POLICIES), client.post(POLICIES, _delete_all_policies_action())):
        assert response.status_code == 302
        assert response["Location"] == f"{reverse('login')}?next={POLICIES}"


def test_staff_still_use_the_admin(client):
    client.force_login(pricing_admin(is_superuser=True))

    assert client.get(POLICIES).status_code == 200
    assert client.get("/admin/").status_code == 200


def test_a_failed_csrf_check_is_the_korean_403_page():
    client = Client(enforce_csrf_checks=True)
    client.force_login(pricing_merchandiser(username="merch-lee"))

    response = client.post(reverse("review:queue"))

    assert _is_korean_403(response, "보안 확인에 실패했습니다")
    assert "CSRF verification failed. Request aborted." not in response.content.decode()


def test_the_403_page_shows_the_views_reason_escaped():
    request = RequestFactory().get("/somewhere/")
    request.user = pricing_merchandiser(username="merch-lee")

    response = defaults.permission_denied(request, PermissionDenied("이 SKU는 <b>잠겨</b> 있습니다"))

    body = response.content.decode()
    assert response.status_code == 403
    assert "이 SKU는 &lt;b&gt;잠겨&lt;/b&gt; 있습니다" in body and "<b>잠겨" not in body
    assert 'href="/"' in body

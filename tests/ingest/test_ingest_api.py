"""POST /matcher/api/listings: bearer token, a batch of listings, per-item results."""
from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from matcher.models import ApiToken, ImportReport, Listing
from tests.factories import ApiTokenFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db

KEY = "pm_test_scraper_key"


@pytest.fixture
def token():
    return ApiTokenFactory(key=KEY, user=UserFactory(username="scraper"))


@pytest.fixture
def jacket():
    return ProductFactory(sku="NP-001")


def item(**overrides) -> dict:
    data = {
        "sku": "NP-001",
        "mall": "무신사",
        "seller": "노스공식",
        "title": "[정품] 눕시 구스다운 <script>alert(1)</script>",
        "price": "299,000",
        "shipping_fee": 0,
        "url": "https://www.musinsa.com/goods/1",
        "product_number": "NJ1DN55A",
        "images": ["https://img.musinsa.com/1.jpg", "https://img.musinsa.com/2.jpg"],
        "seen_at": "2025-11-01T10:00:00+09:00",
    }
    data.update(overrides)
    return data


def post(client, body, *, key: str | None = KEY, raw: bytes | None = None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key is not None else {}
    data = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode()
    return client.post(reverse("matcher:api_listings"), data=data, content_type="application/json", **headers)


def test_without_a_token_it_answers_401_and_writes_nothing(client, jacket):
    response = post(client, {"listings": [item()]}, key=None)
    assert response.status_code == 401  # not a redirect to the login page
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not Listing.objects.exists()
    assert not ImportReport.objects.exists()


@pytest.mark.parametrize("key", ["wrong", "", KEY + "x"])
def test_a_wrong_token_answers_401_and_writes_nothing(client, token, jacket, key):
    assert post(client, {"listings": [item()]}, key=key).status_code == 401
    assert not Listing.objects.exists()


def test_a_deactivated_token_is_refused(client, token, jacket):
    ApiToken.objects.filter(pk=token.pk).update(active=False)
    assert post(client, {"listings": [item()]}).status_code == 401
    assert not Listing.objects.exists()


def test_an_export_only_token_may_not_write_listings_and_is_told_which_scope_it_lacks(client, jacket):
    token = ApiTokenFactory(key=KEY, scopes=[ApiToken.Scope.EXPORT])

    response = post(client, {"listings": [item()]})

    assert response.status_code == 403
    body = response.json()
    assert body["missing_scope"] == "ingest"
    assert "'ingest' 권한" in body["error"] and "없습니다" in body["error"]
    assert not Listing.objects.exists() and not ImportReport.objects.exists()
    assert ApiToken.objects.get(pk=token.pk).last_used_at is None


def test_an_expired_token_answers_401_saying_it_expired_and_writes_nothing(client, jacket):
    ApiTokenFactory(key=KEY, expires_at=timezone.now() - timedelta(minutes=1))

    response = post(client, {"listings": [item()]})

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "만료되었습니다" in response.json()["error"]
    assert not Listing.objects.exists()


def test_a_token_without_an_expiry_and_one_not_yet_expired_both_work(client, jacket):
    ApiTokenFactory(key="pm_forever", expires_at=None)
    ApiTokenFactory(key="pm_tomorrow", expires_at=timezone.now() + timedelta(days=1))

    assert post(client, {"listings": [item()]}, key="pm_forever").status_code == 200
    assert post(client, {"listings": [item()]}, key="pm_tomorrow").status_code == 200


def test_valid_items_land_and_invalid_items_get_their_own_errors(client, token, jacket):
    body = {
        "listings": [
            item(),
            item(url="https://www.musinsa.com/goods/2", price="12.5"),
            item(sku="UNKNOWN", url="https://www.musinsa.com/goods/3"),
            "not an object",
            item(url="https://www.musinsa.com/goods/5", images=["../../etc/passwd"]),
            item(url="https://www.musinsa.com/goods/6", price=289000.0),
        ]
    }

    response = post(client, body)

    assert response.status_code == 200
    data = response.json()
    results = data["results"]
    assert [r["status"] for r in results] == ["created", "error", "error", "error", "error", "error"]
    assert [r["index"] for r in results] == list(range(6))
    listing = Listing.objects.get()
    assert results[0]["listing_id"] == listing.pk
    assert (listing.price, listing.title) == (299_000, "[정품] 눕시 구스다운 <script>alert(1)</script>")
    assert "decimal" in results[1]["errors"][0]
    assert "unknown SKU" in results[2]["errors"][0]
    assert "not an object" in results[3]["errors"][0]
    assert "image URLs only" in results[4]["errors"][0]
    assert "integer KRW only" in results[5]["errors"][0]
    report = ImportReport.objects.get(pk=data["report_id"])
    assert (report.kind, report.created, report.failed, report.user.username) == ("api", 1, 5, "scraper")
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None


def test_posting_the_same_batch_again_is_unchanged_then_a_new_price_is_an_update(client, token, jacket):
    post(client, {"listings": [item()]})
    again = post(client, {"listings": [item()]}).json()["results"][0]
    assert again["status"] == "unchanged"
    cheaper = post(client, {"listings": [item(price=289000)]}).json()["results"][0]
    assert (cheaper["status"], cheaper["listing_id"]) == ("updated", again["listing_id"])
    assert Listing.objects.get().price == 289_000


def test_a_batch_larger_than_the_limit_is_refused_whole(client, token, jacket, settings):
    settings.INGEST_API_MAX_ITEMS = 2
    body = {"listings": [item(url=f"https://www.musinsa.com/goods/{i}") for i in range(3)]}
    response = post(client, body)
    assert response.status_code == 400
    assert "at most 2" in response.json()["error"]
    assert not Listing.objects.exists()


def test_a_body_nested_deeper_than_the_parser_goes_is_a_400_and_writes_nothing(client, token, jacket):
    response = post(client, None, raw=b'{"listings": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert response.status_code == 400
    assert "중첩" in response.json()["error"]
    assert not Listing.objects.exists()


def test_a_body_larger_than_the_limit_is_413(client, token, jacket, settings):
    settings.INGEST_API_MAX_BODY_BYTES = 300
    response = post(client, {"listings": [item(), item(url="https://www.musinsa.com/goods/2")]})
    assert response.status_code == 413
    assert not Listing.objects.exists()


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"listings": {"sku": "x"}}', b"[1, 2]", "{\"listings\": []}".encode("utf-16")],
)
def test_malformed_bodies_are_400(client, token, raw):
    response = post(client, None, raw=raw)
    assert response.status_code == 400
    assert "error" in response.json()


def test_an_empty_batch_is_fine(client, token):
    response = post(client, {"listings": []})
    assert (response.status_code, response.json()["results"]) == (200, [])


def test_other_methods_are_not_allowed(client, token):
    response = client.get(reverse("matcher:api_listings"), HTTP_AUTHORIZATION=f"Bearer {KEY}")
    assert response.status_code == 405


def test_create_api_token_prints_a_key_that_authenticates_once_stored_as_a_hash(client, jacket):
    UserFactory(username="crawler")
    out = io.StringIO()
    call_command("create_api_token", "scraper-prod", "--user", "crawler", stdout=out, stderr=io.StringIO())
    key = out.getvalue().strip()
    token = ApiToken.objects.get(name="scraper-prod")
    assert key not in (token.key_hash, token.prefix) and key.startswith(token.prefix)
    assert post(client, {"listings": [item()]}, key=key).json()["results"][0]["status"] == "created"
    # By default a scraper's key: ingest only, for a year.
    assert token.scopes == ["ingest"]
    assert timedelta(days=364) < token.expires_at - timezone.now() <= timedelta(days=365)
    export = client.get(reverse("pricing:api_changes"), HTTP_AUTHORIZATION=f"Bearer {key}")
    assert export.status_code == 403 and export.json()["missing_scope"] == "export"


def test_create_api_token_sets_the_scopes_and_the_lifetime(client, jacket):
    UserFactory(username="shop")
    out = io.StringIO()
    call_command("create_api_token", "upload", "--user", "shop", "--scope", "export", "--days", "30",
                 stdout=out, stderr=io.StringIO())
    key = out.getvalue().strip()
    token = ApiToken.objects.get(name="upload")

    assert token.scopes == ["export"]
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    assert client.get(reverse("pricing:api_changes"), HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200
    assert post(client, {"listings": [item()]}, key=key).status_code == 403

    call_command("create_api_token", "both", "--user", "shop", "--scope", "ingest", "--scope", "export",
                 "--days", "0", stdout=io.StringIO(), stderr=io.StringIO())
    both = ApiToken.objects.get(name="both")
    assert (both.scopes, both.expires_at) == (["ingest", "export"], None)

    with pytest.raises(CommandError):
        call_command("create_api_token", "bad", "--user", "shop", "--days", "-1", stderr=io.StringIO())


def test_an_admin_narrows_a_tokens_scopes_and_sets_its_expiry_in_the_django_admin(client, token):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    url = reverse("admin:matcher_apitoken_change", args=[token.pk])
    assert 'type="checkbox" name="scopes" value="export"' in client.get(url).content.decode()

    response = client.post(url, {
        "name": token.name, "user": token.user.pk, "active": "on", "scopes": ["export"],
        "expires_at_0": "2030-01-31", "expires_at_1": "09:00:00",
    })

    assert response.status_code == 302, response.content.decode()[:2000]
    token.refresh_from_db()
    assert token.scopes == ["export"]
    assert timezone.localtime(token.expires_at).strftime("%Y-%m-%d %H:%M") == "2030-01-31 09:00"
    assert post(client, {"listings": [item()]}).status_code == 403
    # Keys are printed once by create_api_token; the admin cannot mint a token without one.
    assert client.get(reverse("admin:matcher_apitoken_add")).status_code == 403

"""Pages: what reviewers and admins see, htmx parts, permissions, escaping, and the query budget."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from matcher.evidence import ConflictTerms, EvidenceRecord
from matcher.models import Match
from review.models import Claim, ReviewDecision
from tests.review.factories import make_pair, reviewer

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def merch(client):
    user = reviewer("merch")
    client.force_login(user)
    return user


def test_the_queue_shows_one_claimed_pair_with_photos_prices_and_evidence(client, merch):
    pair = make_pair(
        images=True, money_at_risk=4_500, listing_kwargs={"mall": "무신사", "seller": "데일리샵"}
    )

    response = client.get(reverse("review:queue"))

    html = response.content.decode()
    assert response.status_code == 200
    assert f'data-match-id="{pair.pk}"' in html
    assert pair.product.sku in html and "무신사" in html and "데일리샵" in html
    assert 'rel="noopener noreferrer"' in html and 'target="_blank"' in html
    assert html.count('class="rv-box"') == 2  # both regions outlined
    assert "0.912" in html and "34개" in html and "같은 상품" in html and "NUPTSE" in html
    assert Claim.objects.get(released_at__isnull=True).user == merch


def test_untrusted_competitor_text_is_escaped(client, merch):
    make_pair(
        images=True,
        listing_kwargs={"title": "<script>alert(1)</script> 패딩", "seller": "<b>x</b>"},
        evidence={
            "llm": {"is_match": False, "reasoning": "<img src=x onerror=alert(1)>"},
            "ocr": {"theirs": "<svg/onload=alert(1)>"},
        },
    )

    html = client.get(reverse("review:queue")).content.decode()

    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x onerror" not in html and "<svg/onload" not in html and "<b>x</b>" not in html


def test_a_pair_without_evidence_or_images_still_renders(client, merch):
    make_pair(evidence={"best_pair": {"ours": {"image_sha": "nope", "box": "bad"}}, "cosine": "n/a"})

    response = client.get(reverse("review:queue"))

    assert response.status_code == 200
    assert "이미지 없음" in response.content.decode()


def test_product_numbers_and_conflict_terms_are_highlighted_in_titles(client, merch):
    from tests.factories import ProductFactory

    product = ProductFactory(product_number="NJ1DN55A", title="노스페이스 눕시 NJ1DN55A 블랙")
    make_pair(
        product=product,
        listing_kwargs={"title": "키즈 눕시 nj1-dn55a 블랙"},
        evidence=EvidenceRecord(
            conflicts=[ConflictTerms("audience", ours="adult", theirs="kids", theirs_terms=["키즈"])],
            product_number="match",
        ).to_json(),
    )

    html = client.get(reverse("review:queue")).content.decode()

    assert '<mark class="pn">NJ1DN55A</mark>' in html
    assert '<mark class="pn">nj1-dn55a</mark>' in html
    assert '<mark class="conflict">키즈</mark>' in html
    assert "대상: 우리 <b>adult</b> · 경쟁 <b>kids</b>" in html


def test_approving_through_htmx_returns_the_next_pair_part(client, merch):
    first, second = make_pair(money_at_risk=900), make_pair(money_at_risk=100)
    client.get(reverse("review:queue"))
    claim = Claim.objects.get(released_at__isnull=True)

    response = client.post(
        reverse("review:decide", args=[first.pk]),
        {"action": "approve", "claim": claim.pk, "cursor": f"900:{first.pk}"},
        **HTMX,
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and f'data-match-id="{second.pk}"' in html
    assert "승인했습니다" in html
    assert "review:decided" in response["HX-Trigger"]
    assert response["HX-Push-Url"].endswith(f"?match={second.pk}")
    first.refresh_from_db()
    assert first.status == Match.Status.MATCHED


def test_without_javascript_a_decision_redirects_back_to_the_queue(client, merch):
    pair = make_pair()
    client.get(reverse("review:queue"))
    claim = Claim.objects.get(released_at__isnull=True)

    response = client.post(
        reverse("review:decide", args=[pair.pk]),
        {"action": "reject", "reason": "kids", "claim": claim.pk, "filters": "mall=무신사"},
    )

    assert response.status_code == 302 and response["Location"].startswith(reverse("review:queue"))
    assert "mall=" in response["Location"]
    assert ReviewDecision.objects.get().reason == "kids"


def test_a_refused_decision_shows_the_korean_message_and_moves_on(client, merch):
    pair = make_pair()
    client.get(reverse("review:queue"))
    claim = Claim.objects.get(released_at__isnull=True)
    Match.objects.filter(pk=pair.pk).update(status=Match.Status.REJECTED)

    response = client.post(
        reverse("review:decide", args=[pair.pk]), {"action": "approve", "claim": claim.pk}, **HTMX
    )

    html = response.content.decode()
    assert "이미 처리된 항목입니다" in html
    assert "review:refused" in response["HX-Trigger"]


def test_undo_through_htmx_brings_the_pair_back(client, merch):
    pair = make_pair()
    client.get(reverse("review:queue"))
    claim = Claim.objects.get(released_at__isnull=True)
    client.post(reverse("review:decide", args=[pair.pk]), {"action": "approve", "claim": claim.pk}, **HTMX)

    response = client.post(reverse("review:undo"), {}, **HTMX)

    assert f'data-match-id="{pair.pk}"' in response.content.decode()
    pair.refresh_from_db()
    assert pair.status == Match.Status.PENDING


def test_pages_need_the_review_role(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory(username="plain"))

    assert client.get(reverse("review:queue")).status_code == 403


def test_calibration_is_for_admins_only(client, merch):
    assert client.get(reverse("review:calibration")).status_code == 403
    assert client.get(reverse("review:quality")).status_code == 403


def test_bulk_asks_for_confirmation_before_deciding(client, merch):
    pairs = [make_pair(), make_pair()]
    ids = [p.pk for p in pairs]

    confirm = client.post(reverse("review:bulk"), {"ids": ids, "action": "reject", "reason": "vest"}, **HTMX)
    assert "확인: 2건 제외" in confirm.content.decode()
    assert not ReviewDecision.objects.exists()

    done = client.post(
        reverse("review:bulk"), {"ids": ids, "action": "reject", "reason": "vest", "confirm": "1"}, **HTMX
    )

    # django-htmx's HttpResponseClientRedirect: htmx follows HX-Redirect; the status is its 200.
    assert done.status_code == 200 and done["HX-Redirect"].startswith(reverse("review:list"))
    assert Match.objects.filter(status="rejected").count() == 2


def test_admin_pages_render(client):
    admin = reviewer("boss", admin=True)
    client.force_login(admin)
    make_pair(confidence=Decimal("0.9300"), bucket="auto", status="matched")

    assert client.get(reverse("review:calibration")).status_code == 200
    sim = client.get(reverse("review:calibration"), {"auto": "0.92", "review": "0.7"}, **HTMX)
    assert sim.status_code == 200 and "rv-sim-summary" in sim.content.decode()
    assert client.get(reverse("review:quality")).status_code == 200
    assert client.get(reverse("review:stats")).status_code == 200
    assert client.get(reverse("review:list")).status_code == 200
    assert client.get(reverse("review:summary"), **HTMX).status_code == 200


def test_without_javascript_bulk_shows_a_confirmation_page_then_decides(client, merch):
    pairs = [make_pair(), make_pair()]
    ids = [p.pk for p in pairs]

    page = client.post(reverse("review:bulk"), {"ids": ids, "action": "approve"})
    assert (
        page.status_code == 200
        and "<html" in page.content.decode()
        and "확인: 2건 승인" in page.content.decode()
    )

    done = client.post(reverse("review:bulk"), {"ids": ids, "action": "approve", "confirm": "1"})
    assert done.status_code == 302 and done["Location"].startswith(reverse("review:list"))
    assert Match.objects.filter(status="matched", decided_by_human=True).count() == 2


def test_the_next_link_works_as_a_plain_link_and_opening_the_list_frees_the_pair(client, merch):
    first, second = make_pair(money_at_risk=20), make_pair(money_at_risk=10)
    client.get(reverse("review:queue"))

    page = client.get(reverse("review:queue"), {"after": f"20:{first.pk}", "dir": "next"})
    assert f'data-match-id="{second.pk}"' in page.content.decode()
    assert Claim.objects.get(released_at__isnull=True).match_id == second.pk

    client.get(reverse("review:list"))
    assert not Claim.objects.filter(released_at__isnull=True).exists()

"""Alerts: each condition opens one alert, a repeat evaluation leaves it (one e-mail, one webhook POST),
clearing then recurring opens a new one, a switched-off kind opens nothing; the bell and the list for a
merchandiser and an admin; acknowledging records who; the beat schedule and a real worker run."""
from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

import review.selectors
from config.celery import app
from matcher.models import LlmVerdictRecord, Match
from pricing import services
from pricing.alerts import delivery, selectors
from pricing.alerts.models import Alert, AlertKind, AlertRule
from pricing.alerts.services import alert_acknowledge, alert_rule_save, alerts_evaluate
from pricing.models import PriceProposal
from pricing.tasks import alerts_evaluate_task
from review.selectors.quality import PAUSE_CACHE_KEY
from tests.pricing.factories import PricingProductFactory, match_for, pricing_admin, pricing_merchandiser
from tests.pricing.test_pricing_worker import wait_for

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def eager_tasks():
    """Enqueued tasks run at once in this process, so a test sees what the worker would do."""
    before = {key: app.conf[key] for key in ("task_always_eager", "task_eager_propagates")}
    app.conf.update(task_always_eager=True, task_eager_propagates=True)
    yield
    app.conf.update(before)


@pytest.fixture
def outward(settings, webhook_receiver, mailoutbox, eager_tasks):
    """E-mail on (Django's locmem backend) and the webhook aimed at a local receiver."""
    settings.ALERT_EMAIL_ENABLED = True
    settings.ALERT_EMAILS = ["ops@example.com"]
    settings.ALERT_WEBHOOK_URL = webhook_receiver.url
    settings.ALERT_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    return webhook_receiver


def evaluate(django_capture_on_commit_callbacks, **kwargs):  # noqa: ANN001, ANN003
    with django_capture_on_commit_callbacks(execute=True):
        return alerts_evaluate(**kwargs)


def rule(kind: str, **fields: object) -> AlertRule:
    row, _ = AlertRule.objects.get_or_create(kind=kind)
    for name, value in fields.items():
        setattr(row, name, value)
    return alert_rule_save(rule=row, user=pricing_admin())


def below_floor_sku(sku: str = "LOW-1"):  # noqa: ANN201
    """Price 100,000, cost 60,000: floor 66,000 (10 % margin); a confirmed competitor at 60,000."""
    product = PricingProductFactory(sku=sku)
    match = match_for(product, price=60_000, mall="쿠팡")
    return product, match


# --- each condition --------------------------------------------------------------------------------


def test_a_competitor_below_our_floor_opens_one_alert_sent_once_by_email_and_webhook(
    outward, mailoutbox, django_capture_on_commit_callbacks
):
    product, _ = below_floor_sku()
    PricingProductFactory(sku="FINE-1")  # no competitor: no alert
    match_for(PricingProductFactory(sku="FINE-2"), price=90_000)  # above the floor: no alert

    first = evaluate(django_capture_on_commit_callbacks)
    second = evaluate(django_capture_on_commit_callbacks)

    alert = Alert.objects.get()
    assert (alert.kind, alert.subject_key, alert.product_id) == (AlertKind.BELOW_FLOOR, f"sku:{product.pk}", product.pk)
    assert "LOW-1" in alert.message and "60,000원" in alert.message and "66,000원" in alert.message
    assert first.opened == [alert.pk] and second.opened == [] and alert.cleared_at is None
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["ops@example.com"]
    assert "LOW-1" in mailoutbox[0].body and "새 알림 1건" in mailoutbox[0].subject
    [(headers, body)] = outward.received
    assert headers["Content-Type"].startswith("application/json")
    assert "LOW-1" in json.loads(body)["text"]
    alert.refresh_from_db()
    assert alert.emailed_at is not None and alert.webhook_sent_at is not None


def test_a_condition_that_clears_and_returns_opens_a_new_alert_and_is_sent_again(
    outward, mailoutbox, django_capture_on_commit_callbacks
):
    _, match = below_floor_sku()
    evaluate(django_capture_on_commit_callbacks)
    Match.objects.filter(pk=match.pk).update(status=Match.Status.REJECTED)  # no counted competitor now

    cleared = evaluate(django_capture_on_commit_callbacks)
    Match.objects.filter(pk=match.pk).update(status=Match.Status.MATCHED)
    again = evaluate(django_capture_on_commit_callbacks)

    old, new = Alert.objects.order_by("id")
    assert cleared.cleared == [old.pk] and old.cleared_at is not None
    assert again.opened == [new.pk] and new.cleared_at is None and new.subject_key == old.subject_key
    assert len(mailoutbox) == 2 and len(outward.received) == 2


def test_a_switched_off_kind_opens_nothing_and_clears_its_open_alerts(django_capture_on_commit_callbacks):
    below_floor_sku()
    evaluate(django_capture_on_commit_callbacks)
    rule(AlertKind.BELOW_FLOOR, enabled=False)

    result = evaluate(django_capture_on_commit_callbacks)

    assert result.opened == [] and not Alert.objects.filter(cleared_at__isnull=True).exists()
    Alert.objects.all().delete()
    assert evaluate(django_capture_on_commit_callbacks).opened == []


def test_proposals_waiting_longer_than_the_threshold_open_one_alert(django_capture_on_commit_callbacks):
    rule(AlertKind.PROPOSALS_WAITING, threshold=6)
    product = PricingProductFactory()
    old = PriceProposal.objects.create(product=product, old_price=100_000, new_price=96_000)
    PriceProposal.objects.create(product=product, old_price=100_000, new_price=95_000)  # fresh: not counted
    PriceProposal.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=7))

    evaluate(django_capture_on_commit_callbacks)
    evaluate(django_capture_on_commit_callbacks)

    alert = Alert.objects.get()
    assert alert.kind == AlertKind.PROPOSALS_WAITING and "1건" in alert.message and "6시간" in alert.message
    PriceProposal.objects.filter(pk=old.pk).update(status=PriceProposal.Status.APPLIED)
    assert evaluate(django_capture_on_commit_callbacks).cleared == [alert.pk]


def test_the_kill_switch_and_qc_each_open_one_pause_alert(monkeypatch, django_capture_on_commit_callbacks):
    from django.core.cache import cache

    from tests.review.factories import reviewer
    from tests.review.test_review_quality import _audited, _settings

    admin = pricing_admin()
    services.auto_pricing_halt_set(halted=True, user=admin, reason="세일 준비")
    # QC's real verdict (the pricing tests' autouse fixture turns it off): 1 of 2 audits approved.
    monkeypatch.setattr(review.selectors, "auto_pricing_paused", review.selectors.quality.auto_pricing_paused)
    cache.delete(PAUSE_CACHE_KEY)
    _settings(min_audit_sample=2, precision_target=Decimal("0.5"))
    _audited(1, 1, reviewer("qc"))

    evaluate(django_capture_on_commit_callbacks)
    evaluate(django_capture_on_commit_callbacks)

    alerts = {a.subject_key: a for a in Alert.objects.all()}
    assert set(alerts) == {"halt", "qc"} and {a.kind for a in alerts.values()} == {AlertKind.PRICING_PAUSED}
    assert "세일 준비" in alerts["halt"].message and "QC" in alerts["qc"].message
    services.auto_pricing_halt_set(halted=False, user=admin)
    assert evaluate(django_capture_on_commit_callbacks).cleared == [alerts["halt"].pk]
    cache.delete(PAUSE_CACHE_KEY)


def test_listings_not_refreshed_for_the_threshold_open_one_alert(django_capture_on_commit_callbacks):
    rule(AlertKind.LISTINGS_STALE, threshold=12)
    product = PricingProductFactory()
    match_for(product, price=95_000, last_seen=timezone.now() - timedelta(hours=13))
    match_for(product, price=96_000, last_seen=timezone.now() - timedelta(hours=14))
    match_for(product, price=97_000)  # fresh
    match_for(product, price=90_000, last_seen=timezone.now() - timedelta(days=9),
              status=Match.Status.REJECTED)  # not confirmed: not counted

    evaluate(django_capture_on_commit_callbacks)
    evaluate(django_capture_on_commit_callbacks)

    alert = Alert.objects.get()
    assert alert.kind == AlertKind.LISTINGS_STALE and "2건(SKU 1개)" in alert.message


def test_llm_spend_near_the_daily_cap_opens_one_alert(settings, django_capture_on_commit_callbacks):
    settings.GEMINI_DAILY_SPEND_CAP_USD = Decimal("10")
    rule(AlertKind.LLM_SPEND, threshold=80)

    def spend(usd: str, n: int) -> None:
        LlmVerdictRecord.objects.create(key=f"k{n}", image_a="a", image_b="b", model="m", prompt_version="v",
                                        verdict={}, cost_usd=Decimal(usd))

    spend("7.50", 1)
    assert evaluate(django_capture_on_commit_callbacks).opened == []  # 75 % < 80 %
    spend("0.60", 2)
    evaluate(django_capture_on_commit_callbacks)
    spend("0.50", 3)  # the figure moves on; still the same alert
    evaluate(django_capture_on_commit_callbacks)

    alert = Alert.objects.get()
    assert alert.kind == AlertKind.LLM_SPEND and "$8.60" in alert.message and "86%" in alert.message


def test_a_threshold_out_of_range_is_refused_in_korean():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="1에서 100 사이"):
        rule(AlertKind.LLM_SPEND, threshold=150)
    with pytest.raises(ValidationError, match="기준값이 없습니다"):
        rule(AlertKind.BELOW_FLOOR, threshold=5)
    saved = rule(AlertKind.PROPOSALS_WAITING, threshold=3)
    assert (saved.threshold_value, saved.updated_by.groups.get().name) == (3, "admin")


# --- delivery guards -------------------------------------------------------------------------------


def test_the_alert_webhook_refuses_plain_http_and_private_addresses_unless_allowed(settings):
    from matcher.images.errors import FetchRefused

    settings.ALERT_WEBHOOK_ALLOWED_HOSTS = []
    for url in ("http://hooks.example.com/x", "https://127.0.0.1/x", "https://169.254.169.254/latest",
                "https://user:pw@hooks.example.com/x"):
        with pytest.raises(FetchRefused):
            delivery.webhook_target(url)
    settings.ALERT_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    assert delivery.webhook_target("http://127.0.0.1:9/x").addresses == ("127.0.0.1",)


def test_a_failing_webhook_raises_for_the_retry_and_a_later_attempt_sends_once(
    settings, webhook_receiver, django_capture_on_commit_callbacks
):
    from pricing.exceptions import AlertDeliveryError

    settings.ALERT_WEBHOOK_URL = webhook_receiver.url
    settings.ALERT_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    below_floor_sku()
    with django_capture_on_commit_callbacks(execute=False):  # the enqueue is not run here
        ids = alerts_evaluate().opened
    webhook_receiver.statuses = [503]

    with pytest.raises(AlertDeliveryError):
        delivery.alerts_webhook_send(alert_ids=ids)
    assert delivery.alerts_webhook_send(alert_ids=ids) == 1
    assert delivery.alerts_webhook_send(alert_ids=ids) == 0  # a duplicate message sends nothing
    assert len(webhook_receiver.received) == 2


def test_without_alert_emails_the_admins_with_an_address_receive_them():
    pricing_admin(username="boss", email="boss@example.com")
    pricing_admin(username="nomail", email="")
    pricing_merchandiser(username="md", email="md@example.com")
    assert delivery.alert_recipients() == ["boss@example.com"]


# --- pages -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("make_user", [pricing_merchandiser, pricing_admin], ids=["merchandiser", "admin"])
def test_the_bell_shows_the_open_count_and_the_list_its_alerts(client, make_user, django_capture_on_commit_callbacks):
    below_floor_sku("LOW-1")
    below_floor_sku("LOW-2")
    evaluate(django_capture_on_commit_callbacks)
    client.force_login(make_user())

    home = client.get(reverse("home")).content.decode()
    bell = client.get(reverse("pricing:alerts_bell"), **HTMX).content.decode()
    page = client.get(reverse("pricing:alerts")).content.decode()
    part = client.get(reverse("pricing:alerts") + "?state=all", **HTMX).content.decode()

    assert f'href="{reverse("pricing:alerts")}" hx-get="{reverse("pricing:alerts_bell")}"' in home
    assert 'data-testid="alert-count">2<' in bell
    assert "LOW-1" in page and "LOW-2" in page and "경쟁가가 하한가 아래" in page and "<html" in page
    assert "LOW-1" in part and "<html" not in part
    assert client.get(reverse("pricing:alerts_bell")).status_code == 302  # without htmx: the list page


def test_a_user_without_a_role_sees_no_bell_and_no_list(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory())
    assert "alert-bell" not in client.get(reverse("home")).content.decode()
    assert client.get(reverse("pricing:alerts")).status_code == 403


@pytest.mark.parametrize("make_user", [pricing_merchandiser, pricing_admin], ids=["merchandiser", "admin"])
def test_acknowledging_records_who_and_takes_the_alert_off_the_bell(
    client, make_user, django_capture_on_commit_callbacks
):
    below_floor_sku()
    evaluate(django_capture_on_commit_callbacks)
    alert = Alert.objects.get()
    user = make_user()
    client.force_login(user)

    response = client.post(reverse("pricing:alert_acknowledge", args=[alert.pk]), **HTMX)

    alert.refresh_from_db()
    assert (alert.acknowledged_by, alert.cleared_at) == (user, None)
    assert user.get_username() in response.content.decode() and "alerts-changed" in response["HX-Trigger"]
    assert selectors.alerts_unacknowledged_count() == 0
    other = pricing_admin(username="later")
    alert_acknowledge(alert_id=alert.pk, user=other)  # the first acknowledgement stays
    alert.refresh_from_db()
    assert alert.acknowledged_by == user


def test_the_list_page_runs_a_fixed_number_of_queries(client, django_assert_max_num_queries,
                                                      django_capture_on_commit_callbacks):
    for n in range(5):
        below_floor_sku(f"LOW-{n}")
    evaluate(django_capture_on_commit_callbacks)
    admin = pricing_admin()
    for alert in Alert.objects.all()[:3]:
        alert_acknowledge(alert_id=alert.pk, user=admin)
    client.force_login(admin)
    # session, user, halt switch, count, page, rules, unacknowledged count (+ role for a non-superuser)
    with django_assert_max_num_queries(9):
        client.get(reverse("pricing:alerts"))


# --- schedule and worker ---------------------------------------------------------------------------


def test_beat_evaluates_the_alerts_every_few_minutes(settings):
    [entry] = [e for e in app.conf.beat_schedule.values() if e["task"] == "pricing.tasks.alerts_evaluate_task"]
    assert entry["schedule"] == settings.ALERT_EVALUATE_S <= 15 * 60


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_run_of_the_scheduled_task_opens_the_alert(pricing_worker):
    product, _ = below_floor_sku()

    alerts_evaluate_task.delay()

    wait_for(lambda: Alert.objects.filter(product=product, kind=AlertKind.BELOW_FLOOR).exists(),
             "open the below-floor alert")


def test_a_finished_match_run_evaluates_the_alerts_at_once(eager_tasks, django_capture_on_commit_callbacks):
    # The real producer: the matcher's run_finished signal, sent on commit; pricing's receiver enqueues.
    from matcher.signals import run_finished_on_commit

    product, _ = below_floor_sku()

    with django_capture_on_commit_callbacks(execute=True):
        run_finished_on_commit(run_id=1)

    assert Alert.objects.filter(product=product, kind=AlertKind.BELOW_FLOOR, cleared_at__isnull=True).count() == 1


def test_an_admin_changes_a_threshold_in_the_admin_and_the_rule_records_who(client):
    admin = pricing_admin()
    client.force_login(admin)
    row = AlertRule.objects.get(kind=AlertKind.PROPOSALS_WAITING)  # seeded by the migration
    url = reverse("admin:pricing_alertrule_change", args=[row.pk])

    assert "오래 기다리는 가격 제안" in client.get(reverse("admin:pricing_alertrule_changelist")).content.decode()
    refused = client.post(url, {"enabled": "on", "threshold": "0"})
    response = client.post(url, {"enabled": "on", "threshold": "6"})

    assert "1 이상이어야" in refused.content.decode()
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.threshold, row.updated_by) == (6, admin)
    client.force_login(pricing_merchandiser())
    assert client.get(url).status_code in (302, 403)

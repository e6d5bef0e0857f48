"""Alerts going out: one e-mail and one webhook message per batch of new alerts, each sent once.

Called by ``pricing.tasks.alert_email_task`` / ``alert_webhook_task`` after the evaluation commits.
Each send locks its alerts' rows, sends, and stamps ``emailed_at`` / ``webhook_sent_at`` in the same
transaction: a failure rolls the stamp back and the task retries; a retry or a second run of the task
finds the stamp and sends nothing again.

The webhook URL is an operator's setting, but it is still vetted like the image downloads
(``matcher.images.addresses``): https only, every address the name resolves to must be public (a
host in ALERT_WEBHOOK_ALLOWED_HOSTS may be private and plain http — local test receivers), no
credentials in the URL, no redirects, and the connection goes to the vetted address itself, so a DNS
answer changing between check and connect cannot aim it inside.
"""
from __future__ import annotations

import json
import logging
import smtplib
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from config.roles import ADMIN
from matcher.images.addresses import VettedUrl, resolve, vet_url
from matcher.images.errors import FetchRefused, FetchTransient
from pricing.alerts.models import Alert
from pricing.exceptions import AlertDeliveryError

log = logging.getLogger(__name__)

DIGEST_LINES = 50
USER_AGENT = "pricematch-alerts/1"


def alert_recipients() -> list[str]:
    """ALERT_EMAILS when set, else every active admin (group or superuser) with an e-mail address. ≤ 1 query."""
    if settings.ALERT_EMAILS:
        return list(settings.ALERT_EMAILS)
    admins = get_user_model().objects.filter(is_active=True).exclude(email="")
    admins = admins.filter(Q(is_superuser=True) | Q(groups__name=ADMIN)).distinct()
    return sorted(set(admins.values_list("email", flat=True)))


def _digest(alerts: list[Alert]) -> tuple[str, str]:
    """(subject, body): what the new alerts say, in Korean, newest evaluation's order."""
    subject = f"[PriceMatch] 새 알림 {len(alerts)}건 · {alerts[0].get_kind_display()}"
    lines = [f"• [{a.get_kind_display()}] {a.message}" for a in alerts[:DIGEST_LINES]]
    if len(alerts) > DIGEST_LINES:
        lines.append(f"… 외 {len(alerts) - DIGEST_LINES}건")
    lines.append("")
    lines.append("PriceMatch 알림 화면(/pricing/alerts/)에서 확인하고 '확인'을 눌러 주세요.")
    return subject, "\n".join(lines)


def alerts_email_send(*, alert_ids: list[int]) -> int:
    """E-mail the alerts not e-mailed yet to alert_recipients(); returns how many went out.

    Raises AlertDeliveryError when the mail server fails (the task retries)."""
    recipients = alert_recipients()
    if not recipients:
        log.warning("alert e-mail: no recipients (set ALERT_EMAILS or give an admin an e-mail address)")
        return 0
    with transaction.atomic():
        alerts = list(
            Alert.objects.select_for_update()
            .filter(pk__in=alert_ids, emailed_at__isnull=True)
            .order_by("opened_at", "id")
        )
        if not alerts:
            return 0
        subject, body = _digest(alerts)
        try:
            send_mail(subject, body, None, recipients, fail_silently=False)
        except (OSError, smtplib.SMTPException) as exc:
            raise AlertDeliveryError(f"alert e-mail: {type(exc).__name__}: {exc}") from exc
        Alert.objects.filter(pk__in=[a.pk for a in alerts]).update(emailed_at=timezone.now())
    return len(alerts)


def webhook_target(url: str) -> VettedUrl:
    """The vetted alert webhook address; raises FetchRefused (a wrong URL) or FetchTransient (DNS)."""
    allowed = [h.strip().lower() for h in settings.ALERT_WEBHOOK_ALLOWED_HOSTS if h.strip()]
    target = vet_url(url, allowed_hosts=allowed, resolver=resolve)
    if target.scheme != "https" and target.host not in allowed:
        raise FetchRefused(f"알림 웹훅은 https만 받습니다 (alert webhook must be https: {target.host})")
    return target


def _slack_escape(text: str) -> str:
    # Slack reads <…> as links and mentions; competitor mall names are untrusted.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _post(target: VettedUrl, body: bytes, *, timeout: float) -> int:
    """POST to the first vetted address that accepts a connection; the status code. Raises AlertDeliveryError."""
    import certifi
    import urllib3
    from urllib3.exceptions import HTTPError

    last = ""
    for address in target.addresses:
        kwargs: dict[str, Any] = {"host": address, "port": target.port, "maxsize": 1, "retries": False,
                                  "timeout": urllib3.Timeout(connect=timeout, read=timeout)}
        pool: urllib3.HTTPConnectionPool
        if target.scheme == "https":
            # Connect to the vetted IP, present and verify the certificate of the real name.
            pool = urllib3.HTTPSConnectionPool(server_hostname=target.host, assert_hostname=target.host,
                                               cert_reqs="CERT_REQUIRED", ca_certs=certifi.where(), **kwargs)
        else:
            pool = urllib3.HTTPConnectionPool(**kwargs)
        try:
            response = pool.urlopen(
                "POST", target.path, body=body, redirect=False, retries=False, assert_same_host=False,
                headers={"Host": target.host_header, "User-Agent": USER_AGENT,
                         "Content-Type": "application/json; charset=utf-8"},
            )
            return int(response.status)
        except (HTTPError, OSError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        finally:
            pool.close()
    raise AlertDeliveryError(f"alert webhook {target.host}: {last}")


def alerts_webhook_send(*, alert_ids: list[int]) -> int:
    """POST {"text": …} to ALERT_WEBHOOK_URL for the alerts not sent yet; returns how many went out.

    A refused URL is logged and sends nothing (retrying cannot fix a setting); a failed or non-2xx
    attempt raises AlertDeliveryError (the task retries)."""
    url = settings.ALERT_WEBHOOK_URL
    if not url:
        return 0
    try:
        target = webhook_target(url)
    except FetchRefused as exc:
        log.error("alert webhook refused: %s", exc)
        return 0
    except FetchTransient as exc:
        raise AlertDeliveryError(str(exc)) from exc
    with transaction.atomic():
        alerts = list(
            Alert.objects.select_for_update()
            .filter(pk__in=alert_ids, webhook_sent_at__isnull=True)
            .order_by("opened_at", "id")
        )
        if not alerts:
            return 0
        subject, body = _digest(alerts)
        payload = json.dumps({"text": _slack_escape(f"{subject}\n{body}")}, ensure_ascii=False).encode()
        status = _post(target, payload, timeout=settings.ALERT_WEBHOOK_TIMEOUT_S)
        if not 200 <= status < 300:
            raise AlertDeliveryError(f"alert webhook {target.host}: HTTP {status}")
        Alert.objects.filter(pk__in=[a.pk for a in alerts]).update(webhook_sent_at=timezone.now())
    return len(alerts)

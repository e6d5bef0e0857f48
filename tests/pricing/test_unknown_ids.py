"""An id that does not exist is a 404 on every action that takes one, never a 500 (issue 29, item 4)."""
from __future__ import annotations

import pytest

from tests.pricing.factories import pricing_admin

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", [
    "/pricing/proposals/999999/approve/",
    "/pricing/proposals/999999/reject/",
    "/pricing/changes/999999/rollback/",
    "/pricing/runs/999999/rollback/",
    "/matcher/runs/999999/resume/",
])
def test_an_action_on_an_id_that_does_not_exist_is_a_404(client, url):
    client.force_login(pricing_admin())
    assert client.post(url).status_code == 404

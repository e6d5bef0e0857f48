"""The admin-editable lexicon table: loading the file, and release 0007 re-filing the tops."""
from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from matcher.matching import lexicon
from matcher.models import AttributeTerm
from matcher.pipeline.attributes import conflicts, extract

BEFORE = [("matcher", "0006_match_llm_batch_job")]
AFTER = [("matcher", "0007_garment_kinds_and_sleeve")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_release_0007_refiles_the_tops_an_earlier_load_wrote():
    try:
        old_apps = _migrate(BEFORE)
        Term = old_apps.get_model("matcher", "AttributeTerm")
        Term.objects.all().delete()
        # What load_lexicon wrote before this release, plus an admin's own choices.
        for term in ("티셔츠", "맨투맨", "후드티", "t-shirt", "니트"):
            Term.objects.create(group="garment", value="top", term=term)
        Term.objects.create(group="garment", value="top", term="나시", active=False)
        Term.objects.create(group="garment", value="top", term="크롭탑")  # an admin's own term: kept
        Term.objects.create(group="garment", value="jacket", term="자켓")

        _migrate(AFTER)
        rows = {(t.term, t.value, t.active) for t in AttributeTerm.objects.filter(group="garment")}
        assert rows == {
            ("티셔츠", "tshirt", True), ("맨투맨", "sweatshirt", True), ("후드티", "hoodie", True),
            ("t-shirt", "tshirt", True), ("니트", "knit", True), ("나시", "sleeveless", False),
            ("크롭탑", "top", True), ("자켓", "jacket", True),
        }

        call_command("load_lexicon", verbosity=0)
        assert not AttributeTerm.objects.get(term="나시").active  # the admin's deactivation holds
        assert AttributeTerm.objects.filter(group="sleeve", term="반팔").exists()
        lx = lexicon()
        assert conflicts(extract("그래픽 반팔 티셔츠", lx), extract("그래픽 맨투맨", lx), lx)
        assert conflicts(extract("그래픽 반팔 티셔츠", lx), extract("크롭탑", lx), lx) == []
    finally:
        _migrate(AFTER)
        call_command("migrate", verbosity=0)


@pytest.mark.django_db
def test_loading_the_file_twice_adds_nothing_the_second_time():
    call_command("load_lexicon", verbosity=0)
    count = AttributeTerm.objects.count()
    assert count > 100
    call_command("load_lexicon", verbosity=0)
    assert AttributeTerm.objects.count() == count

"""Alerts: conditions an operator must hear about, raised once until they clear.

- models.py      AlertRule (a kind's switch and threshold), Alert (one condition that held)
- conditions.py  what holds now, one check per kind (reads pricing, review and matcher)
- selectors.py   the bell's count, the list page, the rules in force
- services.py    the evaluation (open / leave / clear), acknowledging, editing a rule
- delivery.py    e-mail and the Slack-compatible webhook, after commit, retried by pricing.tasks
- views.py       the bell and the list page

Nothing is re-exported here: ``pricing.models`` imports ``pricing.alerts.models`` while it loads, so
this package must not import modules that need ``pricing.models`` first.
"""

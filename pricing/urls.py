from django.urls import path

from pricing import api, sku_views, views
from pricing.alerts import views as alert_views

app_name = "pricing"
urlpatterns = [
    path("", views.index, name="index"),
    path("catalogue/", views.catalogue_page, name="catalogue"),
    path("catalogue.csv", views.catalogue_csv, name="catalogue_csv"),
    path("proposals/bulk/", views.proposals_bulk, name="proposals_bulk"),
    path("proposals/<int:proposal_id>/approve/", views.proposal_approve, name="proposal_approve"),
    path("proposals/<int:proposal_id>/reject/", views.proposal_reject, name="proposal_reject"),
    path("changes/<int:change_id>/rollback/", views.change_rollback, name="change_rollback"),
    path("runs/", views.run_start, name="run_start"),
    path("halt/", views.halt, name="halt"),
    path("alerts/", alert_views.alerts_page, name="alerts"),
    path("alerts/bell/", alert_views.alerts_bell, name="alerts_bell"),
    path("alerts/<int:alert_id>/acknowledge/", alert_views.alert_acknowledge, name="alert_acknowledge"),
    path("runs/<int:run_id>/rollback/", views.run_rollback, name="run_rollback"),
    # The CSV route first: a SKU may contain "/", so the page route takes a path.
    path("sku/<path:sku>/history.csv", sku_views.sku_history_csv, name="sku_history_csv"),
    path("sku/<path:sku>/", sku_views.sku_history, name="sku_history"),
    # From the SKU page: a reviewer overturns a pair, an admin decides a proposal (answers with page parts).
    path("pairs/<int:match_id>/overturn/", sku_views.listing_overturn, name="listing_overturn"),
    path("proposals/<int:proposal_id>/decide/", sku_views.proposal_decide, name="sku_proposal_decide"),
    # The review page loads this part lazily; without JavaScript it is a small page of its own.
    path("pairs/<int:match_id>/price-preview/", views.pair_price_preview, name="pair_price_preview"),
    # Bearer token, no session: see pricing/api.py.
    path("api/changes", api.changed_prices, name="api_changes"),
]

from django.urls import path

from matcher import api, views

app_name = "matcher"
urlpatterns = [
    path("runs/", views.run_list, name="runs"),
    path("search/", views.image_search, name="search"),
    path("runs/start/", views.run_start, name="run_start"),
    path("runs/<int:run_id>/", views.run_detail, name="run_detail"),
    path("runs/<int:run_id>/resume/", views.run_resume, name="run_resume"),
    path("imports/", views.imports, name="imports"),
    path("imports/<int:report_id>/", views.import_detail, name="import_detail"),
    # The scraper's JSON ingest (bearer token, no session): see matcher/api.py.
    path("api/listings", api.listings_ingest, name="api_listings"),
]

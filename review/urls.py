from django.urls import path

from review import views

app_name = "review"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("pairs/<int:match_id>/decide/", views.decide, name="decide"),
    path("undo/", views.undo, name="undo"),
    path("summary/", views.summary, name="summary"),
    path("claims/<int:claim_id>/renew/", views.claim_renew, name="claim_renew"),
    path("claims/<int:claim_id>/release/", views.claim_release, name="claim_release"),
    path("list/", views.pair_list, name="list"),
    path("bulk/", views.bulk, name="bulk"),
    path("calibration/", views.calibration, name="calibration"),
    path("calibration/thresholds/", views.thresholds_save, name="thresholds_save"),
    path("quality/", views.quality, name="quality"),
    path("quality/draw/", views.audit_draw, name="audit_draw"),
    path("stats/", views.stats, name="stats"),
]

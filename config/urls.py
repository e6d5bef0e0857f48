from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.static import serve

from pricing import views as pricing_views

handler404 = "config.errors.page_not_found"

urlpatterns = [
    path("", pricing_views.dashboard, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("matcher/", include("matcher.urls")),
    path("review/", include("review.urls")),
    path("pricing/", include("pricing.urls")),
]

if settings.STORAGES["default"]["BACKEND"].endswith("FileSystemStorage"):
    # Media behind login: competitor photos are not ours to publish.
    urlpatterns.append(path("media/<path:path>", serve, {"document_root": settings.MEDIA_ROOT}))

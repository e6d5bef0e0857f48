"""The project's URLs with media served from the MEDIA_ROOT in force at request time.

config.urls binds the media folder when it is imported; browser tests store their photos in a
per-test temporary MEDIA_ROOT, so they route media through this small view instead.
"""

from django.conf import settings
from django.urls import path
from django.views.static import serve

from config.urls import handler404  # noqa: F401 — error handlers are read from the root URLconf
from config.urls import urlpatterns as project_urlpatterns


def media(request, path: str):
    return serve(request, path, document_root=settings.MEDIA_ROOT)


urlpatterns = [p for p in project_urlpatterns if not str(p.pattern).startswith("media/")]
urlpatterns.append(path("media/<path:path>", media))

"""The request type our views see: Django's, plus what django-htmx's middleware adds.

``HtmxMiddleware`` sets ``request.htmx`` on every request (settings.MIDDLEWARE); the stubs of
``HttpRequest`` cannot know that, so views that read it annotate their request with this class, as
django-htmx's documentation recommends. Nothing is instantiated from it.
"""

from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails

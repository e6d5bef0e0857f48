"""What every page shows about the pipeline: the active embedder and whether the LLM verifier is on."""
from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from config.roles import is_admin
from matcher.pipeline_config import active_embedder_label


def pipeline_status(request: HttpRequest) -> dict:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {
        "active_embedder": active_embedder_label(),
        "llm_enabled": bool(settings.GEMINI_API_KEY),
        "is_admin_user": is_admin(request.user),
    }

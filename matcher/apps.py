from django.apps import AppConfig


class MatcherConfig(AppConfig):
    name = "matcher"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from matcher import checks  # noqa: F401  (registers the system checks)

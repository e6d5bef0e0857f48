from django.apps import AppConfig


class PricingConfig(AppConfig):
    name = "pricing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from matcher.signals import matches_changed
        from pricing import receivers

        matches_changed.connect(
            receivers.reprice_after_matches_changed, dispatch_uid="pricing.reprice_after_matches_changed"
        )

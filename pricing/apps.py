from django.apps import AppConfig


class PricingConfig(AppConfig):
    name = "pricing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from matcher.signals import catalogue_changed, catalogue_price_imported, matches_changed, run_finished
        from pricing import receivers

        matches_changed.connect(
            receivers.reprice_after_matches_changed, dispatch_uid="pricing.reprice_after_matches_changed"
        )
        catalogue_changed.connect(
            receivers.reprice_after_catalogue_changed, dispatch_uid="pricing.reprice_after_catalogue_changed"
        )
        catalogue_price_imported.connect(
            receivers.price_from_catalogue_import, dispatch_uid="pricing.price_from_catalogue_import"
        )
        run_finished.connect(receivers.alerts_after_run, dispatch_uid="pricing.alerts_after_run")

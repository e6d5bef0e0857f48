from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from matcher.signals import run_finished
        from review import receivers

        run_finished.connect(
            receivers.draw_audit_sample_after_run, dispatch_uid="review.audit_sample_after_run"
        )

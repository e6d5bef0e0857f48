"""Forms of the review pages: the threshold pair (simulator and save) and the bulk decision."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict

from matcher.services import thresholds_validate
from review.models import RejectReason, ReviewDecision
from review.services import BULK_MAX, NOTE_MAX

Action = ReviewDecision.Action


class ThresholdsForm(forms.Form):
    """A threshold pair; clean() applies the one rule (matcher.services.thresholds_validate)."""

    auto = forms.CharField(max_length=32, error_messages={"required": "자동 매칭 기준을 입력해 주세요."})
    review = forms.CharField(max_length=32, error_messages={"required": "검토 기준을 입력해 주세요."})
    note = forms.CharField(max_length=300, required=False)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if "auto" in data and "review" in data:
            data["auto"], data["review"] = thresholds_validate(
                auto_threshold=data["auto"], review_threshold=data["review"]
            )
        return data

    @property
    def error(self) -> str:
        """The first error as one sentence, for a page that shows a single message."""
        for messages in self.errors.values():
            return str(messages[0])
        return ""


class IdListField(forms.Field):
    """Repeated ``ids`` values; what is not a whole number is left out (a stale checkbox, not an error)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[int]:
        ids: list[int] = []
        for raw in value or []:
            try:
                ids.append(int(raw))
            except (TypeError, ValueError):
                continue
        return ids


class BulkDecisionForm(forms.Form):
    """The bulk approve/reject POST: first without confirm (the confirmation), then with confirm=1."""

    ids = IdListField(error_messages={"required": "처리할 항목을 선택해 주세요."})
    action = forms.ChoiceField(
        choices=[(Action.APPROVE, "승인"), (Action.REJECT, "제외")],
        error_messages={
            "required": "승인 또는 제외를 골라 주세요.",
            "invalid_choice": "승인 또는 제외를 골라 주세요.",
        },
    )
    reason = forms.CharField(required=False)
    note = forms.CharField(
        required=False,
        max_length=NOTE_MAX,
        error_messages={
            "max_length": f"메모는 {NOTE_MAX}자 이내로 써 주세요.",
        },
    )
    confirm = forms.BooleanField(required=False)

    def clean_ids(self) -> list[int]:
        ids = self.cleaned_data["ids"]
        if not ids:
            raise ValidationError("처리할 항목을 선택해 주세요.")
        if len(set(ids)) > BULK_MAX:
            raise ValidationError(f"한 번에 {BULK_MAX}건까지 처리할 수 있습니다.")
        return ids

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("action") == Action.REJECT and data.get("reason") not in RejectReason.values:
            raise ValidationError("제외 사유를 골라 주세요.")
        return data

    @property
    def error(self) -> str:
        """The first error in field order (ids, action, reason), as the page shows one message."""
        for name in ("ids", "action", "note", "__all__"):
            if name in self.errors:
                return str(self.errors[name][0])
        return ""

    def echo(self) -> dict[str, Any]:
        """What the confirmation shows and posts again: the cleaned values, else what was sent."""
        data = getattr(self, "cleaned_data", {})
        sent_ids = self.data.getlist("ids") if isinstance(self.data, QueryDict) else self.data.get("ids")
        return {
            "ids": data.get("ids", self.fields["ids"].to_python(sent_ids)),
            "action": data.get("action", self.data.get("action", "")),
            "reason": data.get("reason", self.data.get("reason", "")),
            "note": data.get("note", self.data.get("note", "")),
        }

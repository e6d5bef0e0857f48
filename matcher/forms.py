from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from matcher import images

NOTHING_GIVEN = "사진을 올리거나 이미지 URL을 입력하세요."


class ImageSearchForm(forms.Form):
    """A photo or an image URL. An uploaded photo is checked here, by content (matcher.images.sniff), so a
    refused file says why (too large, too many pixels, not an image); `cleaned_data["image"]` is its bytes."""

    # A plain file field: Django's ImageField would turn every refusal into one "not an image or corrupt".
    image = forms.FileField(label="사진 업로드", required=False)
    url = forms.URLField(label="또는 이미지 URL", required=False, assume_scheme="https")

    def clean_image(self) -> bytes | None:
        upload = self.cleaned_data.get("image")
        if not upload:
            return None
        if upload.size > settings.IMAGE_MAX_BYTES:
            raise forms.ValidationError(
                f"파일이 너무 큽니다 (file too large: 최대 {settings.IMAGE_MAX_BYTES // 1_000_000} MB)."
            )
        data = upload.read()
        try:
            images.sniff(data, max_pixels=settings.IMAGE_MAX_PIXELS)
        except images.ImageRejected as refused:
            raise forms.ValidationError(refused.reason) from None
        return data

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        given = bool(data.get("image") or data.get("url") or self.files.get("image") or self.data.get("url"))
        if not given:
            raise forms.ValidationError(NOTHING_GIVEN)
        if data.get("url") and not data["url"].lower().startswith(("http://", "https://")):
            raise forms.ValidationError("http(s) URL만 사용할 수 있습니다.")
        return data

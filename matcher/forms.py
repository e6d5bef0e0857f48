from __future__ import annotations

from typing import Any

from django import forms


class ImageSearchForm(forms.Form):
    image = forms.ImageField(label="사진 업로드", required=False)
    url = forms.URLField(label="또는 이미지 URL", required=False, assume_scheme="https")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("image") and not data.get("url"):
            raise forms.ValidationError("사진을 올리거나 이미지 URL을 입력하세요.")
        if data.get("url") and not data["url"].lower().startswith(("http://", "https://")):
            raise forms.ValidationError("http(s) URL만 사용할 수 있습니다.")
        return data

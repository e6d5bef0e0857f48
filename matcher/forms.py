from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest

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


class ImportUploadForm(forms.Form):
    """A catalogue or listings file for the worker to import; the file itself is checked by the service
    (matcher.services.import_upload_accept), with the commands' messages."""

    kind = forms.ChoiceField(
        label="가져올 종류",
        choices=[("catalog", "카탈로그 (우리 SKU와 가격)"), ("listings", "경쟁 상품 (몰별 리스팅)")],
        widget=forms.RadioSelect,
        error_messages={"required": "가져올 종류를 고르세요.", "invalid_choice": "가져올 종류를 고르세요."},
    )
    # Last in the form: a body cut off at the size limit keeps the fields before it.
    file = forms.FileField(
        label="파일 (CSV 또는 JSON Lines, UTF-8)",
        error_messages={"required": "파일을 고르세요.", "empty": "빈 파일입니다 (empty file)."},
    )


class UploadSizeLimit(FileUploadHandler):
    """Stops storing an upload once it passes `max_bytes`: the rest of the body is read and dropped, so
    a huge file never reaches memory or disk, and the page can still answer with the limit."""

    def __init__(self, request: HttpRequest, max_bytes: int) -> None:
        super().__init__(request)
        self.max_bytes = max_bytes
        self.received = 0
        self.exceeded = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.max_bytes:
            self.exceeded = True
            raise StopUpload(connection_reset=False)
        return raw_data  # on to Django's own handlers, which keep the file

    def file_complete(self, file_size: int) -> None:
        return None

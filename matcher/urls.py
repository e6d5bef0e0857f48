from django.urls import path

from matcher import views

app_name = "matcher"
urlpatterns = [
]

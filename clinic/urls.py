from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token

from clinic.api import PingView
from workups.views import VocabularyView, WorkupEvaluateView

api_v1 = [
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("ping/", PingView.as_view(), name="api-ping"),
    path("workup/evaluate/", WorkupEvaluateView.as_view(), name="api-workup-evaluate"),
    path("vocabulary/", VocabularyView.as_view(), name="api-vocabulary"),
]

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

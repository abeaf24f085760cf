"""The bad request page. Django's own is decorated with requires_csrf_token, which reads the form once more for
its token: when reading the form was what failed (a form sent as UTF-16), that raised the same error inside the
error page, and the answer was a bare 500. This one needs nothing from the request."""

from django.http import HttpResponseBadRequest
from django.template import loader


def bad_request(request, exception):
    return HttpResponseBadRequest(loader.get_template("400.html").render())

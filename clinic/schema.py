"""How the API's own authentication classes appear in the OpenAPI schema, so generated clients know to
send `Authorization: Token <key>` (or the session cookie with its CSRF token)."""

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "clinic.authentication.LocalizedTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`, the key from POST /api/v1/auth/token/ (it expires; see `expiry`).",
        }


class LocalizedSessionScheme(SessionScheme):
    target_class = "clinic.authentication.LocalizedSessionAuthentication"

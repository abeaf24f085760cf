"""Settings for the back-numbness workup service, read from the environment.

Every variable is read through config.env so a bad value stops start-up with
a message naming it. Nothing secret lives in this file.
"""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_choice, env_int, env_list, env_str, env_time_zone, env_url
from referrals import dispatch as referral_tasks  # the task names alone (no Django import)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
    SECRET_KEY = "insecure-development-key-only-used-with-DJANGO_DEBUG"  # noqa: S105 - debug only, refused otherwise

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_filters",
    "django_htmx",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "clinic",
    "workups",
    "referrals",
    "ehr",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Django's CommonMiddleware, with a 308 (not 301) for a POST to an API route without its slash.
    "clinic.middleware.SlashCommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): whether this session gave a two-factor code (django-otp).
    "django_otp.middleware.OTPMiddleware",
    # After authentication: the language comes from the GP's profile first (clinic.middleware).
    "clinic.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # After messages: signs out a session idle too long or too old, with a message (clinic.middleware).
    "clinic.middleware.SessionTimeoutMiddleware",
    # A session that owes its two-factor code reaches only the code page (clinic.two_factor).
    "clinic.two_factor.TwoFactorMiddleware",
    # Refused requests (401, 403, another clinic's 404) are audited with who and where (clinic.middleware).
    "clinic.middleware.ProbeAuditMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "clinic.middleware.PrivateResponseMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last: turns a login refused by django-axes into the 429 answer (clinic.lockout).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_database_url = env_url(
    "DATABASE_URL",
    f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
    schemes={"sqlite", "postgres", "postgresql", "pgsql"},
)
try:
    DATABASES = {
        "default": dj_database_url.parse(_database_url, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0))
    }
except ValueError as error:
    raise ImproperlyConfigured(f"DATABASE_URL is not usable: {error}") from None
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # The worklist's partial indexes carry the columns that place a row (INCLUDE), so that PostgreSQL answers
    # from the index alone; SQLite keeps the indexes without them, which is all the embedded default needs.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
    # Concurrent writers (gunicorn's workers, the in-process tasks, an EHR sending requests side by side): a
    # transaction takes the write lock when it begins and waits for it, instead of failing with "database is
    # locked" when a reader turns writer while another writes (SQLite does not wait then). WAL lets readers go on
    # while one writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    # Server-side parameter binding (psycopg 3): values travel apart from the SQL, so a failed statement
    # that PostgreSQL writes to its log reads `... WHERE family_name = $1`, never a patient's name.
    # Django's caveats: expressions with parameters repeated in SELECT and GROUP BY are not recognised as
    # the same (ticket #34255; the app has none), at most 65,535 parameters per statement, and statements
    # are not prepared (prepare_threshold stays None), so a transaction-pooling PgBouncer still works.
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Russian and English are both first-class. A request's language: the GP's profile, then
# Accept-Language, then the clinic's default (clinic.middleware); LANGUAGE_CODE is the last resort.
LANGUAGE_CODE = env_choice("DJANGO_LANGUAGE_CODE", "ru", choices=("ru", "en"))
LANGUAGES = [("ru", "Русский"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# English dates day first ("17 May 1980"), not the American 05/17/1980 (config/formats/en).
FORMAT_MODULE_PATH = ["config.formats"]
TIME_ZONE = env_time_zone("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"

# Two-step login (clinic.two_factor, django-otp): the name authenticator apps show for this service's codes.
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "Back numbness workup")

# Password reset by email (clinic.password_reset): the link works once, for PASSWORD_RESET_HOURS; requests are
# throttled with the login's limits. Email goes to the console (the server's log) unless EMAIL_BACKEND=smtp.
PASSWORD_RESET_TIMEOUT = 3600 * env_int("PASSWORD_RESET_HOURS", 1, minimum=1, maximum=72)
EMAIL_BACKEND = {
    "console": "django.core.mail.backends.console.EmailBackend",
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
}[env_choice("EMAIL_BACKEND", "console", choices=("console", "smtp"))]
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
# STARTTLS (port 587) unless implicit TLS (EMAIL_USE_SSL, port 465) is asked for; never both.
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", not EMAIL_USE_SSL)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be on")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1, maximum=120)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "backnumb@localhost")

# Login lockout (django-axes, clinic.lockout): after LOGIN_FAILURE_LIMIT failed logins for one username,
# or LOGIN_ADDRESS_FAILURE_LIMIT from one address, within LOGIN_LOCKOUT_MINUTES, the login page and the
# token endpoint answer 429 with Retry-After until that long after the last counted failure, even with
# the right password; a success forgets the username's failures. Kept in the shared cache (Redis).
AUTHENTICATION_BACKENDS = ["clinic.lockout.LockoutBackend"]
AXES_HANDLER = "clinic.lockout.LockoutHandler"
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 20, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "clinic.lockout.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
# The client's address (for the limits and the audit trail): REMOTE_ADDR, or behind this many reverse proxies,
# each appending to X-Forwarded-For, the address the outermost one was reached from (clinic.addresses).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0, maximum=5)
AXES_CLIENT_IP_CALLABLE = "clinic.addresses.client_ip"
# Never the username or the address in axes' log lines (the audit trail has the address).
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address"]
# Nor its banner at every process start (every manage.py command, every worker): lockouts still log a warning.
AXES_VERBOSE = False

# Cookies: never readable by script (the CSRF token reaches htmx and forms through the templates), sent on
# same-site navigation only, and over HTTPS only when debug is off (DJANGO_SECURE_COOKIES=0 for a plain-HTTP
# demo on a machine of one's own).
SESSION_COOKIE_HTTPONLY = CSRF_COOKIE_HTTPONLY = LANGUAGE_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = LANGUAGE_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Content-Security-Policy (django-csp): scripts, styles, fonts and images only from the app itself, no inline
# script or style, no framing, forms post only here. On every page: the admin and the API docs too.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
# HTTPS deployments: tell browsers to come back over HTTPS only (0 leaves the header out), and ask to be on
# the browsers' preload list (DJANGO_HSTS_PRELOAD: for a domain that is HTTPS-only, subdomains included).
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
# Plain HTTP is redirected to HTTPS. Behind a proxy that ends TLS, the proxy says how the request came with
# X-Forwarded-Proto (DJANGO_SECURE_PROXY_SSL_HEADER; the proxy must set it, overwriting any the client sent).
SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", False)
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# A web session ends after SESSION_IDLE_MINUTES without a request and SESSION_MAX_HOURS after the login,
# however busy (clinic.middleware.SessionTimeoutMiddleware); Django's login() gives it a new id.
SESSION_IDLE_SECONDS = 60 * env_int("SESSION_IDLE_MINUTES", 30, minimum=1, maximum=24 * 60)
SESSION_ABSOLUTE_SECONDS = 3600 * env_int("SESSION_MAX_HOURS", 12, minimum=1, maximum=7 * 24)
# The cookie and the stored session never outlive the absolute limit.
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_SECONDS

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "clinic.authentication.LocalizedTokenAuthentication",
        "clinic.authentication.LocalizedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "clinic.renderers.FastJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["clinic.parsers.StrictJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "clinic.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# API tokens (django-rest-knox): only a digest is stored; a token works for API_TOKEN_HOURS after it is
# issued, until POST /api/v1/auth/logout/ (that token), /logout-all/ or a password change (all of the user's).
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=env_int("API_TOKEN_HOURS", 8, minimum=1, maximum=24 * 90)),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
    "TOKEN_LIMIT_PER_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Back numbness workup API",
    "DESCRIPTION": (
        "Recommends the workup (tests) and specialist referrals for a patient with numbness in the back, "
        "triaged and explained, with the guideline source of every recommendation. Codes are those of the "
        "vocabulary endpoint; they are never renamed."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Served from the app itself: the docs page works without reaching a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One name per choice set (drf-spectacular names sets shared by fields of the same name after the field,
    # and would otherwise add a hash to tell them apart). The generated clients' type names follow these.
    "ENUM_NAME_OVERRIDES": {
        "ItemCodeEnum": "workups.serializers.ITEM_CODES",
        "LanguageEnum": "clinic.models.Language",  # as stored and shown (a clinic's, a document's)
        "LanguageCodeEnum": "referrals.models.DocumentLanguage.values",  # as a request names a document's
        "SexEnum": "clinic.models.Sex",
        "ReferralStatusEnum": "referrals.models.ReferralStatus",
    },
    # The schema's own warnings belong to the API's tests (tests/test_openapi.py, the generated client), not to
    # `check --deploy`, which is about the deployment's security.
    "ENABLE_DJANGO_DEPLOY_CHECK": False,
}

REDIS_URL = env_url("REDIS_URL", None, schemes={"redis", "rediss", "unix"})

# Redis is the cache too when it is there (shared by every process: CDS Hooks replay protection);
# otherwise each process keeps its own.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "backnumb",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
# Login failures must be counted across processes (gunicorn's workers): without Redis, in files under var/.
if not REDIS_URL:
    CACHES["lockout"] = {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(VAR_DIR / "lockout"),
    }
AXES_CACHE = "default" if REDIS_URL else "lockout"

# FHIR: the canonical URL of the project's code system (every code of the vocabulary lives in it) and
# the identifier system of patients registered in the app itself. Set them to URLs you control.
FHIR_CODE_SYSTEM_URL = env_url(
    "FHIR_CODE_SYSTEM_URL", "https://backnumb.example.org/fhir/CodeSystem/workup", schemes={"http", "https", "urn"}
)
FHIR_IDENTIFIER_SYSTEM = env_url(
    "FHIR_IDENTIFIER_SYSTEM", "https://backnumb.example.org/fhir/patient-identifier", schemes={"http", "https", "urn"}
)

# The origin EHRs use to reach the CDS Hooks services (the JWT audience), when a proxy hides it.
CDS_HOOKS_BASE_URL = env_url("CDS_HOOKS_BASE_URL", None, schemes={"http", "https"})

# SMART Backend Services: how long an access token from POST /fhir/auth/token lasts (ehr.smart).
SMART_TOKEN_SECONDS = env_int("SMART_TOKEN_SECONDS", 300, minimum=60, maximum=3600)

# Celery: with no REDIS_URL the app runs with zero services and tasks run in-process.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = REDIS_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A web request must never hang on a dead Redis: short socket timeouts and no publish retries.
# What could not be enqueued stays pending in the database for the sweep below.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None  # a worker waits for Redis to come back
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_timeout": 2,
    "socket_connect_timeout": 2,
    # Publishing (from a web request) tries the connection once more, then gives up.
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
    # An unacknowledged task (its worker died) goes back to the queue after this long.
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 600, minimum=10),
}
CELERY_TASK_PUBLISH_RETRY = False
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 120, minimum=5)
CELERY_TASK_SOFT_TIME_LIMIT = max(CELERY_TASK_TIME_LIMIT - 10, 1)
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# The sweep: enqueue documents left pending (broker down when they were saved, or a lost message).
DOCUMENT_SWEEP_SECONDS = env_int("DOCUMENT_SWEEP_SECONDS", 30, minimum=1)
DOCUMENT_REQUEUE_SECONDS = env_int("DOCUMENT_REQUEUE_SECONDS", 300, minimum=1)
# Marking what has become overdue (awaited tests, open referrals, unacknowledged results). On the
# embedded default (no Redis, no beat) it runs in-process when the worklist is read, at most this often.
OVERDUE_SWEEP_SECONDS = env_int("OVERDUE_SWEEP_SECONDS", 900, minimum=1)
# Only one scheduler sends tasks, however many `celery beat` (or `worker --beat`) run: each needs a lock in
# Redis that lapses BEAT_LOCK_SECONDS after its holder stops renewing it (config.celery.SingleBeatScheduler).
CELERY_BEAT_SCHEDULER = "config.celery.SingleBeatScheduler"
BEAT_LOCK_SECONDS = env_int("BEAT_LOCK_SECONDS", 30, minimum=3, maximum=600)
CELERY_BEAT_SCHEDULE = {
    "documents-sweep": {"task": referral_tasks.SWEEP, "schedule": float(DOCUMENT_SWEEP_SECONDS)},
    "mark-overdue": {"task": referral_tasks.MARK_OVERDUE, "schedule": float(OVERDUE_SWEEP_SECONDS)},
}

# No patient data in error reports or logs (config.reporting): no frame's variables, no POST parameter and no
# query string in a report, and a database error's message (PostgreSQL quotes values in it) withheld in both.
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.reporting.PatientDataReporterFilter"
DEFAULT_EXCEPTION_REPORTER = "config.reporting.PatientDataExceptionReporter"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "config.reporting.PatientDataFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

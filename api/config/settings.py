"""Palier settings: one module, driven by environment variables.

Defaults are the embedded mode (SQLite, embedded MQTT broker, Celery on the filesystem
transport, file backends for SMS, e-mail and push) so that `make run` needs no server.
With PALIER_ENV=production every secret must come from the environment.
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

PALIER_ENV = env.str("PALIER_ENV", default="development")
PRODUCTION = PALIER_ENV == "production"
VAR_DIR = Path(env.str("PALIER_VAR_DIR", default=str(BASE_DIR / "var")))

_DEV_ONLY = "dev-only-insecure-key-change-me-0123456789-abcdefghijklmnopqrstuvwxyz"


def _secret(name: str) -> str:
    """A secret: required in production, a fixed development value otherwise."""
    if PRODUCTION:
        value = env.str(name, default="")
        if len(value) < 50 or len(set(value)) < 5:
            raise ImproperlyConfigured(f"{name} must be set to a long random value in production.")
        return value
    return env.str(name, default=f"{name}-{_DEV_ONLY}")


SECRET_KEY = _secret("SECRET_KEY")
JWT_SIGNING_KEY = _secret("JWT_SIGNING_KEY")
if PRODUCTION and JWT_SIGNING_KEY == SECRET_KEY:
    raise ImproperlyConfigured("JWT_SIGNING_KEY must differ from SECRET_KEY.")

DEBUG = env.bool("DEBUG", default=not PRODUCTION)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set in production.")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Public base URL of the API, used in signed links and deep links sent to people.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
APP_DEEP_LINK_BASE = env.str("APP_DEEP_LINK_BASE", default="palier://")

INSTALLED_APPS = [
    "unfold",
    "unfold.contrib.filters",
    "unfold.contrib.import_export",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "phonenumber_field",
    "django_otp",
    "axes",
    "import_export",
    "anymail",
    "api.core",
    "api.accounts",
    "api.estate",
    "api.telemetry",
    "api.tickets",
    "api.notifications",
    "api.news",
    "api.documents",
    "api.faults",
    "api.audits",
    "api.privacy",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Oversized bodies are refused (413) before anything reads them.
    "api.core.limits.RequestLimitsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    "api.core.idempotency.IdempotencyMiddleware",
]

ROOT_URLCONF = "api.config.urls"
WSGI_APPLICATION = "api.config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Data stores -----------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'palier.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (API, worker, beat) share the file: WAL and immediate transactions
    # turn "database is locked" errors into short waits.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
CACHES = {
    "default": env.cache_url(
        "CACHE_URL",
        default=REDIS_URL or f"filecache://{VAR_DIR / 'cache'}",
    )
}

# --- Auth ------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
# E-mails are matched case-insensitively at login, so lockouts must be too.
AXES_USERNAME_CALLABLE = "api.accounts.authentication.axes_username"
# The client address as the API's throttles see it (REST_FRAMEWORK["NUM_PROXIES"]).
AXES_CLIENT_IP_CALLABLE = "api.accounts.authentication.client_ip"

# Phone login by one-time code (api.accounts.otp): back-off in seconds after a wrong code
# (1, 2, 4, 8 s with factor 1) and the shortest answer to a code request, so that known and
# unknown numbers take the same time.
OTP_THROTTLE_FACTOR = env.float("OTP_THROTTLE_FACTOR", default=1.0)
OTP_REQUEST_MIN_SECONDS = env.float("OTP_REQUEST_MIN_SECONDS", default=0.3)

PHONENUMBER_DEFAULT_REGION = "FR"
PHONENUMBER_DB_FORMAT = "E164"

# --- Internationalisation --------------------------------------------------------------------
LANGUAGE_CODE = "fr"
LANGUAGES = [
    ("fr", "Français"),
    ("fr-falc", "Français facile à lire"),
    ("en", "English"),
    ("ar", "العربية"),
]
LOCALE_PATHS = [BASE_DIR / "api" / "locale"]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

# --- Static and media ------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 2000
# Any request body, uploads included (the largest is a 20 MB rent ledger import): above it,
# 413 at once, before anything is read. Each upload has its own, smaller limit too.
MAX_REQUEST_BYTES = env.int("MAX_REQUEST_BYTES", default=24 * 1024 * 1024)

# --- API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.accounts.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "api.core.pagination.PagePagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.core.exceptions.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "otp_ip": env.str("THROTTLE_OTP_IP", default="30/hour"),
        # Many phones share one address behind mobile carriers' NAT: generous, but bounded.
        "otp_ip_day": env.str("THROTTLE_OTP_IP_DAY", default="200/day"),
        "login_ip": env.str("THROTTLE_LOGIN_IP", default="60/hour"),
        "otp_verify_ip": env.str("THROTTLE_OTP_VERIFY_IP", default="60/hour"),
    },
    # Client addresses for throttling come from X-Forwarded-For only behind this many trusted
    # proxies; with 0 a client cannot dodge a per-IP limit by sending the header itself.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
MAX_PAGE_SIZE = 200

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=10)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=30)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SIGNING_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Palier API",
    "DESCRIPTION": (
        "Resident relations for social landlords: tenants' accounts and requests, caretakers' "
        "rounds, cleanliness audits, connected heating and ventilation units."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_GENERATE_CHOICE_DESCRIPTION": False,
    "ENUM_NAME_OVERRIDES": {
        "AlertStatusEnum": "api.notifications.models.AlertStatus",
        "AppointmentStatusEnum": "api.tickets.models.AppointmentStatus",
        "AuditAnswerTypeEnum": "api.audits.models.AnswerType",
        "AuditAnswerValueEnum": "api.audits.models.AnswerValue",
        "AuditResponsiblePartyEnum": "api.audits.models.ResponsibleParty",
        "AuditRoundStatusEnum": "api.audits.models.RoundStatus",
        "AuditStatusEnum": "api.audits.models.AuditStatus",
        "CleanlinessSurveyChannelEnum": "api.audits.models.SurveyChannel",
        "BroadcastKindEnum": "api.notifications.models.BroadcastKind",
        "BroadcastStatusEnum": "api.notifications.models.BroadcastStatus",
        "ChannelEnum": "api.notifications.models.Channel",
        "TelemetryConsentChannelEnum": "api.estate.models.ConsentChannel",
        "TelemetryPurposeEnum": "api.estate.models.TelemetryPurpose",
        "CommonAreaKindEnum": "api.estate.models.CommonAreaKind",
        "ConsentChannelEnum": "api.accounts.models.ConsentChannel",
        "DelegationRelationEnum": "api.estate.models.DelegationRelation",
        "DeliveryStatusEnum": "api.notifications.models.DeliveryStatus",
        "DeviceEventKindEnum": "api.telemetry.models.DeviceEventKind",
        "DeviceKindEnum": "api.telemetry.models.DeviceKind",
        "DeviceStatusEnum": "api.telemetry.models.DeviceStatus",
        "DwellingTypeEnum": "api.estate.models.DwellingType",
        "EquipmentKindEnum": "api.estate.models.EquipmentKind",
        "AuditDisputeOutcomeEnum": "api.audits.models.DisputeOutcome",
        "FaultSeverityEnum": "api.faults.models.Severity",
        "EstateEventKindEnum": "api.estate.models.EstateEventKind",
        "HouseholdRelationEnum": "api.estate.models.HouseholdRelation",
        "IncidentStatusEnum": "api.tickets.models.IncidentStatus",
        "IncidentUpdateKindEnum": "api.tickets.models.IncidentUpdateKind",
        "PostKindEnum": "api.news.models.PostKind",
        "PushDeviceKindEnum": "api.notifications.models.PushDeviceKind",
        "ReceiptKindEnum": "api.documents.models.ReceiptKind",
        "RoleEnum": "api.core.roles.Role",
        "TeamKindEnum": "api.estate.models.TeamKind",
        "TicketConfirmationEnum": "api.tickets.models.Confirmation",
        "TicketEventKindEnum": "api.tickets.models.EventKind",
        "TicketPayerEnum": "api.tickets.models.Payer",
        "TicketPlaceKindEnum": "api.tickets.models.PlaceKind",
        "TicketPriorityEnum": "api.tickets.models.Priority",
        "TicketQuestionKindEnum": "api.tickets.models.QuestionKind",
        "TicketSourceEnum": "api.tickets.models.Source",
        "TicketStatusEnum": "api.tickets.models.Status",
        "TicketWaitingReasonEnum": "api.tickets.models.WaitingReason",
        "TradeEnum": "api.estate.models.Trade",
        "VulnerabilityKindEnum": "api.accounts.models.VulnerabilityKind",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.core.schema.add_error_responses",
        "api.core.idempotency.add_idempotency_header",
    ],
    "SECURITY": [{"jwtAuth": []}],
}

# --- Task queue ------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(VAR_DIR / "celery" / "queue"),
        "data_folder_out": str(VAR_DIR / "celery" / "queue"),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    # Redis: a task taken by a worker that died (kill -9, lost host) comes back after this
    # long; every task is idempotent, and none runs anywhere near it.
    else {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_S", default=300)}
)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict = {
    "worker-heartbeat": {"task": "core.worker_heartbeat", "schedule": 30.0},
    "accounts-purge-expired-credentials": {
        "task": "accounts.purge_expired_credentials",
        "schedule": 3600.0,
    },
    "telemetry-offline-sweep": {"task": "telemetry.mark_silent_offline", "schedule": 60.0},
    "telemetry-aggregates": {"task": "telemetry.update_aggregates", "schedule": 300.0},
    "telemetry-partitions": {"task": "telemetry.prepare_partitions", "schedule": 6 * 3600.0},
    "telemetry-purge": {"task": "telemetry.purge", "schedule": 24 * 3600.0},
    "tickets-sla-breaches": {"task": "tickets.detect_sla_breaches", "schedule": 300.0},
    "tickets-appointment-reminders": {
        "task": "tickets.send_appointment_reminders",
        "schedule": 900.0,
    },
    "tickets-auto-close": {"task": "tickets.auto_close_unconfirmed", "schedule": 3600.0},
    # Daily, but each tenant is asked at most once a week (the notification's dedupe key).
    "audits-survey-invitations": {"task": "audits.send_survey_invitations", "schedule": 86400.0},
    # Last month's cleanliness PDFs, rendered once so the 1st-of-month reading rush is instant.
    "audits-monthly-reports": {
        "task": "audits.store_monthly_reports",
        "schedule": crontab(day_of_month="1", hour="2", minute="30"),
    },
    # The outbox sweeper: deliveries whose hand-off to a worker was lost, or whose worker died.
    "notifications-sweep": {
        "task": "notifications.sweep",
        "schedule": env.float("NOTIFY_SWEEP_SECONDS", default=5.0),
    },
    "notifications-escalate": {"task": "notifications.escalate", "schedule": 30.0},
    "news-publish-due": {"task": "news.publish_due", "schedule": 60.0},
    "faults-offline-sweep": {"task": "faults.sweep_offline", "schedule": 60.0},
    "faults-dispatch-due": {"task": "faults.dispatch_due", "schedule": 30.0},
    "faults-unshelve-expired": {"task": "faults.unshelve_expired", "schedule": 60.0},
    "faults-metrics": {"task": "faults.refresh_metrics", "schedule": 60.0},
    # Retention (api.privacy.retention): idempotent, so the interval need not be exact.
    "privacy-retention": {"task": "privacy.retention", "schedule": 24 * 3600.0},
    # Files of data exports whose signed link has expired (api.privacy.services).
    "privacy-expire-exports": {"task": "privacy.expire_exports", "schedule": 3600.0},
}
# How a person's access log names the staff who read their data: "full" (name and role),
# "initial" (first name, initial, role) or "role" (the role only).
PRIVACY_ACCESS_LOG_NAMES = env.str("PRIVACY_ACCESS_LOG_NAMES", default="full")
# Ingest batches go to one queue per device-hash shard (api.telemetry.routing), so that one
# device's batches are handled in order; refused messages to their own queue.
CELERY_TASK_ROUTES = ["api.telemetry.routing.route_task"]

# --- MQTT ------------------------------------------------------------------------------------
# The bridge's broker and login. The development default carries the bridge login that
# api.telemetry.services.bridge_credentials() writes into the embedded broker's password file.
MQTT_URL = env.str(
    "MQTT_URL", default="mqtt://palier-bridge:palier-bridge-dev-password@127.0.0.1:1884"
)
EMBEDDED_MQTT_PORT = env.int("EMBEDDED_MQTT_PORT", default=1884)
# Optional: a local Mosquitto's pid file, signalled (SIGHUP) when device credentials change.
MOSQUITTO_PID_FILE = env.str("MOSQUITTO_PID_FILE", default="")
# MQTT bridge (workers/bridge.py, docs/operations.md). Each bridge needs a client id of its own
# that stays the same across restarts (its persistent session); empty: palier-bridge-<host>-<n>
# with n from BRIDGE_INSTANCE or `palier bridge --instance n`.
MQTT_BRIDGE_CLIENT_ID = env.str("MQTT_BRIDGE_CLIENT_ID", default="")
# auto: shared subscription when the broker offers it (MQTT 5), plain otherwise; on; off.
MQTT_SHARED_SUBSCRIPTION = env.str("MQTT_SHARED_SUBSCRIPTION", default="auto")
# Fleets (organisation slugs) this bridge pool serves; empty: all of them.
MQTT_BRIDGE_FLEETS = env.list("MQTT_BRIDGE_FLEETS", default=[])
# auto: MQTT 5, or 3.1.1 when the broker refuses 5 (the embedded broker); 5; 3.1.1.
MQTT_PROTOCOL = env.str("MQTT_PROTOCOL", default="auto")
MQTT_SESSION_EXPIRY_S = env.int("MQTT_SESSION_EXPIRY_S", default=2 * 86400)
MQTT_KEEPALIVE_S = env.int("MQTT_KEEPALIVE_S", default=30)
# Unacknowledged messages the broker may send a bridge (bounds the bridge's memory).
MQTT_RECEIVE_MAXIMUM = env.int("MQTT_RECEIVE_MAXIMUM", default=20000)
BRIDGE_METRICS_PORT = env.int("BRIDGE_METRICS_PORT", default=9108 if PRODUCTION else 9198)

# --- Telemetry ingest and retention ----------------------------------------------------------
INGEST_SHARDS = env.int("INGEST_SHARDS", default=2)
INGEST_BATCH_SIZE = env.int("INGEST_BATCH_SIZE", default=1000)
INGEST_BATCH_MS = env.int("INGEST_BATCH_MS", default=200)
TELEMETRY_RAW_RETENTION_DAYS = env.int("TELEMETRY_RAW_RETENTION_DAYS", default=90)
TELEMETRY_AGGREGATE_RETENTION_DAYS = env.int("TELEMETRY_AGGREGATE_RETENTION_DAYS", default=730)
TELEMETRY_QUARANTINE_RETENTION_DAYS = env.int("TELEMETRY_QUARANTINE_RETENTION_DAYS", default=30)

# --- Outbound channels -----------------------------------------------------------------------
OUTBOX_DIR = Path(env.str("OUTBOX_DIR", default=str(VAR_DIR / "outbox")))
SMS_BACKEND = env.str("SMS_BACKEND", default="api.accounts.sms.FileSMSBackend")
SMS_PROVIDER_URL = env.str("SMS_PROVIDER_URL", default="")
SMS_PROVIDER_TOKEN = env.str("SMS_PROVIDER_TOKEN", default="")
SMS_SENDER_ID = env.str("SMS_SENDER_ID", default="PALIER")
SMS_DAILY_BUDGET = env.int("SMS_DAILY_BUDGET", default=5000)
SMS_PROVIDER_TIMEOUT = env.float("SMS_PROVIDER_TIMEOUT", default=10.0)
# Shared secret the SMS provider signs inbound messages with (HMAC-SHA256, api.tickets.apis).
SMS_INBOUND_SECRET = env.str(
    "SMS_INBOUND_SECRET", default="" if PRODUCTION else "dev-only-sms-inbound-secret"
)
PUSH_BACKEND = env.str("PUSH_BACKEND", default="file")
FCM_CREDENTIALS_FILE = env.str("FCM_CREDENTIALS_FILE", default="")
VAPID_PRIVATE_KEY = env.str("VAPID_PRIVATE_KEY", default="")
VAPID_PUBLIC_KEY = env.str("VAPID_PUBLIC_KEY", default="")
VAPID_CLAIM_EMAIL = env.str("VAPID_CLAIM_EMAIL", default="")

# --- Notification outbox (api.notifications) -------------------------------------------------
# Workers claim this many due deliveries at a time, for this long; a claim older than its
# lease belongs to a dead worker and is recovered by the sweeper.
NOTIFY_CLAIM_BATCH = env.int("NOTIFY_CLAIM_BATCH", default=25)
NOTIFY_CLAIM_LEASE_SECONDS = env.int("NOTIFY_CLAIM_LEASE_SECONDS", default=60)
NOTIFY_DRAIN_FANOUT = env.int("NOTIFY_DRAIN_FANOUT", default=8)
NOTIFY_DRAIN_SECONDS = env.float("NOTIFY_DRAIN_SECONDS", default=30.0)
NOTIFY_SWEEP_GRACE_SECONDS = env.int("NOTIFY_SWEEP_GRACE_SECONDS", default=5)
NOTIFY_MAX_ATTEMPTS = env.int("NOTIFY_MAX_ATTEMPTS", default=6)
NOTIFY_RETRY_BASE_SECONDS = env.int("NOTIFY_RETRY_BASE_SECONDS", default=30)
NOTIFY_RETRY_MAX_SECONDS = env.int("NOTIFY_RETRY_MAX_SECONDS", default=3600)
# Critical notices: SMS to people with the app who have not read it, then the caretaker's
# door-knocking list of households nobody in which has read it.
NOTIFY_CRITICAL_SMS_AFTER_MINUTES = env.int("NOTIFY_CRITICAL_SMS_AFTER_MINUTES", default=15)
NOTIFY_NOT_REACHED_AFTER_MINUTES = env.int("NOTIFY_NOT_REACHED_AFTER_MINUTES", default=120)
# Maintenance alerts: time to acknowledge before the next person on call is called, and flood
# control (at most this many alerts per team per window, then one digest).
NOTIFY_ALERT_ACK_MINUTES = env.int("NOTIFY_ALERT_ACK_MINUTES", default=15)
NOTIFY_ALERT_ACK_CRITICAL_MINUTES = env.int("NOTIFY_ALERT_ACK_CRITICAL_MINUTES", default=5)
NOTIFY_ALERT_FLOOD_LIMIT = env.int("NOTIFY_ALERT_FLOOD_LIMIT", default=10)
NOTIFY_ALERT_FLOOD_WINDOW_MINUTES = env.int("NOTIFY_ALERT_FLOOD_WINDOW_MINUTES", default=10)

# --- Fault detection (docs/fault-rules.md) ----------------------------------------------------
# Correlation: this share of a building's (or substation's) dwellings raising the same class of
# fault within the window opens one incident; smaller groups never correlate.
FAULT_INCIDENT_SHARE = env.float("FAULT_INCIDENT_SHARE", default=0.30)
FAULT_INCIDENT_WINDOW_MINUTES = env.int("FAULT_INCIDENT_WINDOW_MINUTES", default=30)
FAULT_INCIDENT_MIN_DWELLINGS = env.int("FAULT_INCIDENT_MIN_DWELLINGS", default=4)
# Work and alerts of a fault that may be part of a building-wide loss wait this long (wall
# clock) for the incident to form; 0 sends them at once.
FAULT_CORRELATION_HOLD_S = env.int("FAULT_CORRELATION_HOLD_S", default=300)
FAULT_TICKET_SEVERITY = env.str("FAULT_TICKET_SEVERITY", default="major")
FAULT_ALERT_SEVERITY = env.str("FAULT_ALERT_SEVERITY", default="major")
FAULT_SHELVE_MAX_DAYS = env.int("FAULT_SHELVE_MAX_DAYS", default=30)
FAULT_OFFLINE_INTERVALS = env.int("FAULT_OFFLINE_INTERVALS", default=3)
FAULT_OFFLINE_MIN_INTERVAL_S = env.int("FAULT_OFFLINE_MIN_INTERVAL_S", default=60)
FAULT_RULE_CACHE_S = env.float("FAULT_RULE_CACHE_S", default=30.0)
# Heating season (month, day) to (month, day), local dates.
FAULT_HEATING_SEASON = ((10, 1), (5, 20))
FAULT_INCIDENT_MESSAGES = {
    "chauffage": "Nous avons détecté une panne de chauffage dans votre immeuble. "
    "Nos techniciens sont prévenus et interviennent. Nous vous dirons quand il reviendra.",
    "ventilation": "Nous avons détecté une panne de la ventilation dans votre immeuble. "
    "Nos techniciens sont prévenus et interviennent.",
    "default": "Nous avons détecté une panne dans votre immeuble. Nos techniciens interviennent.",
}
FAULT_INCIDENT_OVER_MESSAGE = "Tout fonctionne de nouveau normalement. Merci de votre patience."
FAULT_CLEARED_TICKET_NOTE = "L'appareil indique que tout fonctionne de nouveau."
NOTIFY_ACK_LINK_MAX_AGE_HOURS = env.int("NOTIFY_ACK_LINK_MAX_AGE_HOURS", default=24)
# Shared secret of the delivery-report webhooks (HMAC-SHA256 of the body); without it in
# production every report is refused.
NOTIFY_WEBHOOK_SECRET = env.str(
    "NOTIFY_WEBHOOK_SECRET", default="" if PRODUCTION else f"NOTIFY_WEBHOOK_SECRET-{_DEV_ONLY}"
)

_email = env.email_url("EMAIL_URL", default="filemail://")
vars().update(_email)
if EMAIL_BACKEND == "django.core.mail.backends.filebased.EmailBackend":  # noqa: F821
    EMAIL_FILE_PATH = str(OUTBOX_DIR / "email")
ANYMAIL = env.json("ANYMAIL", default={})
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Palier <noreply@palier.invalid>")
# Operators alerted by e-mail (e.g. when the daily SMS budget is reached), with superusers.
ADMINS = [(address, address) for address in env.list("ADMINS", default=[])]
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)

# --- Security --------------------------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^api/health/$", r"^api/ready/$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}

UNFOLD = {
    "SITE_TITLE": "Palier",
    "SITE_HEADER": "Palier",
    "SITE_SUBHEADER": "Relation locataires",
    "SHOW_HISTORY": True,
}

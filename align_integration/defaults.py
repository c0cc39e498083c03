"""Default values of every ``ALIGN_INTEGRATION`` key.

This module is the single source of truth for the settings reference in
``docs/settings.md``; a test checks that every key here is documented there.
"""

from __future__ import annotations

from typing import Any

#: Keys a deployment must provide; a missing one is reported by a system check.
REQUIRED_SERVICE_KEYS = ("BASE_URL", "CLIENT_ID", "CLIENT_SECRET")

DEFAULTS: dict[str, Any] = {
    # Dotted path to the CaseAdapter subclass that maps the host's case model.
    "CASE_ADAPTER": "align_integration.adapters.CaseAdapter",
    # The Align integration service (outbound calls).
    "SERVICE": {
        "BASE_URL": "",
        "CLIENT_ID": "",
        "CLIENT_SECRET": "",
        # Every path is configurable so a deployment can correct one without a release.
        "PATHS": {
            "token": "/auth/token",
            "create_patient": "/patients",
            "find_patients": "/patients",
            "create_order": "/orders",
            "find_orders": "/orders",
            "upload_assets": "/assets/upload",
            "clincheck_accept": "/orders/{caseId}/accept",
            "clincheck_revise": "/orders/{caseId}/modify",
        },
        # (connect, read) timeouts in seconds.
        "CONNECT_TIMEOUT": 5.0,
        "READ_TIMEOUT": 15.0,
        # In-request retries for timeouts, connection errors, 429 and 5xx.
        "RETRIES": 2,
        "BACKOFF_FACTOR": 0.5,
        "BACKOFF_MAX": 10.0,
        "BACKOFF_JITTER": 0.5,
        # Longest Retry-After (seconds) waited for inside a request; a longer one ends the
        # request's retries and the background retry waits the whole time instead.
        "RETRY_AFTER_MAX": 10,
    },
    # Largest answer body read from either vendor (JSON answers and error bodies), in
    # bytes; a larger 2xx answer is refused as a protocol error.  Scan downloads stream to
    # a file instead and are capped by ITERO["MAX_ZIP_BYTES"].
    "MAX_RESPONSE_BYTES": 1024 * 1024,
    # Django cache alias that holds bearer tokens (Redis in production, shared by all
    # processes).
    "TOKEN_CACHE": "default",
    # Seconds before ``expires_in`` at which a cached token is considered stale.
    "TOKEN_REFRESH_MARGIN": 60,
    # How long one process waits for another's token refresh before giving up.
    "TOKEN_LOCK_TIMEOUT": 30,
    # Standard Webhooks secrets ("whsec_...") accepted on the callbacks endpoint;
    # several at once allow key rotation.
    "CALLBACK_SECRETS": [],
    # "inline": a callback is applied before it is answered (the host sees the sales order
    # at once).  "deferred": it is validated and stored, answered, and applied by a task
    # (when a task backend other than the immediate one is configured) or by align_worker
    # on its next pass: faster ingestion, later effects.
    "CALLBACK_PROCESSING": "inline",
    # Largest accepted callback body, in bytes (larger answers 413 before parsing).
    "CALLBACK_MAX_BYTES": 256 * 1024,
    # The chief concern sent with every primary order by the default
    # CaseAdapter.chief_concern.  No default: copy the value the old tool hard-coded.
    # Empty (and chief_concern not overridden) is the system check error E014.
    "CHIEF_CONCERN": "",
    # Gender sent to Align when the host does not know the patient's gender
    # (Align accepts only M or F).
    "DEFAULT_GENDER": "M",
    # Order type of the primary order.
    "PRIMARY_ORDER_TYPE": "IAS",
    # Minimum number of STL assets before a case can be sent.
    "MIN_STL_FILES": 2,
    # Background retries of remote operations.
    "OPERATION_MAX_ATTEMPTS": 8,
    "OPERATION_BACKOFF_BASE": 30,
    "OPERATION_BACKOFF_MAX": 3600,
    # Seconds the oldest due operation may wait before align_doctor and the health endpoint
    # call the backlog unhealthy (nothing is running the retries).
    "BACKLOG_MAX_OVERDUE": 900,
    # Token that opens the health endpoint without a staff login (header
    # X-Align-Health-Token); empty: only staff can read it.
    "HEALTH_TOKEN": "",
    # The provider's approve and revise: at most PROVIDER_ACTION_LIMIT per case in any
    # PROVIDER_ACTION_WINDOW seconds (counted in the TOKEN_CACHE alias); 0 switches it off.
    "PROVIDER_ACTION_LIMIT": 10,
    "PROVIDER_ACTION_WINDOW": 600,
    # How long one run of a remote operation holds it (seconds); a send to Align holds its
    # case as long, renewed at each step.  Longer than one call with its in-request retries.
    "OPERATION_CLAIM_SECONDS": 120,
    # A run whose claim ran out this long ago crashed: another worker takes its operation
    # (and the case) over.  Claim + takeover is the longest a crashed run's work waits.
    "OPERATION_TAKEOVER_SECONDS": 30,
    # How long a worker holds the due operations it claimed in one batch before it gets to
    # them; once past, another worker may take the ones it has not started.
    "WORKER_HOLD_SECONDS": 300,
    # Acceptance screenshots (data URLs from html2canvas).
    "SCREENSHOT_MAX_BYTES": 5 * 1024 * 1024,
    "SCREENSHOT_MAX_PIXELS": 25_000_000,
    # Storage upload_to prefix of CaseAsset files.
    "ASSET_UPLOAD_TO": "align_integration/assets/%Y/%m/",
    # Name of the Django tasks backend alias background jobs are enqueued on.
    "TASK_BACKEND": "default",
    # The one-off import from the old in-repo tool (``manage.py align_import_legacy``).
    # Table and column names are the old tool's; each can be overridden per run with
    # --orders-table/--assets-table and --orders-column/--assets-column FIELD=COLUMN.
    # When reading CSV exports (--orders-csv/--assets-csv) the column names are the
    # CSV header names.
    "LEGACY_IMPORT": {
        # Sales order records Align sent to the old tool.
        "ORDERS_TABLE": "cases_align_orders",
        "ORDERS_COLUMNS": {
            "id": "id",  # the old row id, only used in the report ("" if there is none)
            "case_id": "case_id",
            "order_type": "order_type",
            "sales_order_number": "sales_order_number",
            "patient_id": "pid",  # Align's patient id (the seeds' query calls it pid)
            "created": "date_created",  # when Align created the sales order
        },
        # Legacy order_type values (compared case-insensitively) -> "primary"/"secondary".
        "ORDER_TYPES": {"primary": "primary", "secondary": "secondary"},
        # The old tool's case assets; only rows of kind CCACCEPTSCREEN are imported (the
        # acceptance screenshots a ClinCheck accept needs).  The files stay in the old vault:
        # the imported CaseAsset keeps vault_id and external_key and has no file.
        "ASSETS_TABLE": "cases_case_asset",
        "ASSETS_COLUMNS": {
            "id": "id",  # required: an imported asset remembers it as source_ref "legacy:<id>"
            "case_id": "case_id",
            "kind": "kind",
            "vault_id": "vault_id",
            "external_key": "external_key",
            "date_created": "date_created",
            "date_removed": "date_removed",
        },
        # Treatment plans and statuses of cases in flight at cutover (--plans-csv, or this
        # table with --plans-table).  The old integration service kept them, so there is no
        # default table; the columns are the CSV header names, or the table's columns.
        "PLANS_TABLE": "",
        "PLANS_COLUMNS": {
            "case_id": "case_id",
            "plan_id": "plan_id",
            "version": "version",
            "status": "status",  # Align's status of the case at cutover
            "received_at": "received_at",  # when the plan arrived
        },
        # Statuses (compared case-insensitively) under which an imported plan awaits the
        # provider's review; a plan the provider approved already (an acceptance screenshot
        # from or after the plan's date) never awaits review.
        "REVIEW_STATUSES": ["treatment_plan_ready"],
        # Time zone of dates without an offset (CSV exports, "timestamp without time zone"
        # columns).  Empty: the project's TIME_ZONE.
        "TIME_ZONE": "",
    },
    # The optional iTero lab connector.
    "ITERO": {
        "OAUTH_BASE_URL": "",
        "BASE_URL": "",
        "LOGIN_URL": "",
        "CLIENT_ID": "",
        "CLIENT_SECRET": "",
        # Discovered URLs must be https on one of these hosts (".example.com" matches
        # subdomains).  Loopback hosts over http are accepted only if listed here.
        "ALLOWED_HOSTS": [".iterocloud.com"],
        # Secret path segment of the itero-notifications URL: at least 32 characters
        # (check E012), e.g. secrets.token_urlsafe(32).
        "NOTIFICATION_TOKEN": "",
        # This site's public https origin as iTero and browsers reach it, e.g.
        # "https://lab.example.com": the notification URL given when pairing and the OAuth
        # redirect URL are built on it.  Empty: built from the request (warning W003
        # outside DEBUG); set, it must be https outside DEBUG (check E013).
        "PUBLIC_URL": "",
        # Most notifications kept waiting for the worker; beyond it the endpoint answers 503
        # with Retry-After (the Get Orders poll still finds every scan).
        "MAX_PENDING_NOTIFICATIONS": 1000,
        # Key (any string) that encrypts refresh tokens at rest; defaults to SECRET_KEY.
        "ENCRYPTION_KEY": "",
        # Fallback paths (on BASE_URL) used when Discovery does not name an endpoint;
        # "{rxId}" and "{assetType}" are filled in.  Discovery's URLs always win.
        "PATHS": {
            "discovery": "/api/v2/discovery",
            "accounts": "/api/third-party/v1/accounts",
            "pair": "/api/third-party/v1/pair",
            "unpair": "/api/third-party/v1/unpair",
            "orders": "/api/third-party/v1/orders/lab",
            "order": "/api/third-party/v1/orders/{rxId}",
            "download": "/api/third-party/v1/orders/{rxId}/download/{assetType}",
            "return_scan": "/api/third-party/v1/orders/{rxId}/return",
        },
        "POLL_INTERVAL": 120,
        # The lab status of the orders on our cases (Lab Review, iTero Modeling…) is looked
        # up by Rx id, per account, once per POLL_INTERVAL: at most this many orders each
        # time, for orders up to this many days old (0 switches the watch off).
        "LAB_STATUS_CHECKS": 20,
        "LAB_STATUS_WATCH_DAYS": 30,
        "DOWNLOAD_MAX_ATTEMPTS": 6,
        "DOWNLOAD_RETRY_BASE": 60,
        "MAX_ZIP_BYTES": 4 * 1024 * 1024 * 1024,
        "MAX_ZIP_MEMBERS": 2000,
        "MAX_UNCOMPRESSED_BYTES": 8 * 1024 * 1024 * 1024,
        "MAX_COMPRESSION_RATIO": 200,
        "CONNECT_TIMEOUT": 5.0,
        "READ_TIMEOUT": 60.0,
        # Folder for scan downloads in progress (empty: the system temp folder).  Needs room
        # for the largest scan archive; a download is only kept once complete.
        "DOWNLOAD_TEMP_DIR": "",
    },
}

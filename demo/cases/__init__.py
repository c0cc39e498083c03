"""The demo's own case models, shaped like the host project the app was extracted from."""

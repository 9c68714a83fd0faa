"""The dashboard (API.md §12): server-rendered pages at ``/dashboard`` from the http role.

``dashboard_routes`` gives the routes the HTTP API mounts: sign-in and the user's own settings
(``auth``), the pages (``pages``), and the static assets (``static/``, served by relaygate: no
CDN, no build step). The plumbing every route shares — sessions, CSRF, rendering, security
headers — is ``web``. Pages call the same actions as the command line and the management API.
"""

from __future__ import annotations

from relaygate.dashboard.routes import dashboard_routes

__all__ = ["dashboard_routes"]

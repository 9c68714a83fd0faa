"""Management actions: the one code path behind the command line, the management API
(``/v1/account``, ``/v1/keys`` …, API.md §11) and the dashboard.

Every action is a plain synchronous function ``action(store, actor, …)`` in the module of its
noun (``manage.keys``, ``manage.audit`` …). It checks the ``Actor``'s scope, validates its
input, changes the store, appends one ``Audit`` entry, and returns store values. It raises only
``relaygate.errors``: ``Invalid`` (400, naming the field), ``Forbidden`` (403, a missing
scope), ``NotFound`` (404, also for another account's object), ``Conflict`` (409), and the
store's ``StoreUnavailable``; never an HTTP or CLI object. Store calls block: an async caller
runs an action off the event loop (``starlette.concurrency.run_in_threadpool``).

Each noun module also has ``*_json`` functions: the JSON shape of its values (times in ISO
8601 UTC), shared by the API and the command line's ``--json``.
"""

from __future__ import annotations

from relaygate.manage.actor import ADMIN, Actor

__all__ = ["ADMIN", "Actor"]

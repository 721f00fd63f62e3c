"""A user's connected apps: the OAuth clients they allowed, and "Remove access".

Each app is a consent (the scopes the user allowed it) and the sessions its code
exchanges opened. Removing access forgets the consent and ends every one of those
sessions, so the app's access and refresh tokens die at once (userinfo and
introspection say so on the next call), and records ``app_access_removed``. No authlib
here: the dashboard pays for no protocol import.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from chalicelib.accounts.sessions import Device
from chalicelib.crypto.tokens import is_id
from chalicelib.oauth.clients import Clients
from chalicelib.platform import errors, observability
from chalicelib.store.table import Store

_log = logging.getLogger("gatehouse")


class ConnectedApps:
    def __init__(self, store: Store, clients: Clients, clock: Callable[[], float]) -> None:
        self._store = store
        self._clients = clients
        self._clock = clock

    def list(self, user_id: str) -> list[dict[str, Any]]:
        """Each app the user allowed, newest first: its name, the scopes, when it was
        allowed and when its tokens were last used (None if never exchanged)."""
        now = int(self._clock())
        last_used: dict[str, int] = {}
        for session in self._store.list_sessions(user_id):
            if session.client_id and session.expires_at > now:
                seen = last_used.get(session.client_id, 0)
                last_used[session.client_id] = max(seen, session.last_used_at)
        apps = []
        for consent in self._store.list_consents(user_id):
            client = self._clients.get(consent.client_id)
            if client is None:  # deleted by the operator: nothing left to connect
                continue
            apps.append(
                {
                    "client_id": client.id,
                    "name": client.name,
                    "scopes": consent.scope.split(),
                    "connected_at": consent.granted_at,
                    "last_used_at": last_used.get(client.id),
                }
            )
        return sorted(apps, key=lambda app: app["connected_at"], reverse=True)

    def remove(self, user_id: str, client_id: str, device: Device) -> None:
        """Forget the consent and end the app's sessions; ``NotFound`` if it had neither."""
        event = device.event(user_id, "app_access_removed", "success", self._clock())
        if not is_id(client_id) or not self._store.remove_app(user_id, client_id, event=event):
            raise errors.NotFound("No such connected app.")
        removed = {"user_id": user_id, "client_id": client_id}
        observability.count(_log, "OAuthAccessRemoved", removed)

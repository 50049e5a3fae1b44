"""Conversations belong to whoever started them: a device, the box itself, or a peer.

A bounded map from conversation id to owner (appliance.web.access.Caller.owner).
``/api/chat`` and ``/api/voice`` claim an id before they use it: a new id is
claimed by the caller, a known one only by its owner, so passing someone
else's ``conversation_id`` brings back none of their history (403).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict

from aiohttp import web

from appliance.web.access import caller_of
from appliance.web.errors import ApiError

MAX_TRACKED = 10_000

class ConversationOwners:
    """Conversation id -> owner, the least recently used forgotten beyond ``limit``."""

    def __init__(self, limit: int = MAX_TRACKED) -> None:
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._limit = limit

    def claim(self, conversation_id: str, owner: str) -> bool:
        """True when ``owner`` may use ``conversation_id`` (taking it if it is new)."""
        have = self._owners.get(conversation_id)
        if have is not None and have != owner:
            return False
        self._owners[conversation_id] = owner
        self._owners.move_to_end(conversation_id)
        while len(self._owners) > self._limit:
            self._owners.popitem(last=False)
        return True


OWNERS = web.AppKey("conversation_owners", ConversationOwners)


def setup(app: web.Application) -> None:
    app[OWNERS] = ConversationOwners()


def claim(request: web.Request, conversation_id: str | None) -> str:
    """The conversation id the request may use: its own (checked) or a new one (403 else)."""
    cid = conversation_id or uuid.uuid4().hex
    owners = request.app.get(OWNERS)
    if owners is not None and not owners.claim(cid, caller_of(request).owner):
        raise ApiError(403, "that conversation belongs to another device",
                       code="not_your_conversation", param="conversation_id")
    return cid

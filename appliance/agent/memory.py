"""Conversation memory: the last messages of each conversation, bounded in count and size."""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any

#: Conversations remembered; the least recently used is forgotten first.
MAX_CONVERSATIONS = 1000
MAX_CONVERSATION_ID_CHARS = 128


class ConversationMemory:
    """Per conversation id, a window of the last ``max_messages`` user/assistant messages."""

    def __init__(self, max_messages: int, max_conversations: int = MAX_CONVERSATIONS) -> None:
        self.max_messages = max_messages
        self.max_conversations = max_conversations
        self._conversations: OrderedDict[str, deque[dict[str, Any]]] = OrderedDict()

    def history(self, conversation_id: str | None) -> list[dict[str, Any]]:
        if conversation_id is None or conversation_id not in self._conversations:
            return []
        self._conversations.move_to_end(conversation_id)
        return list(self._conversations[conversation_id])

    def append(self, conversation_id: str | None, messages: list[dict[str, Any]]) -> None:
        if conversation_id is None or self.max_messages == 0:
            return
        window = self._conversations.get(conversation_id)
        if window is None:
            window = deque(maxlen=self.max_messages)
            self._conversations[conversation_id] = window
            while len(self._conversations) > self.max_conversations:
                self._conversations.popitem(last=False)
        self._conversations.move_to_end(conversation_id)
        window.extend(messages)
        # A window must not start with an answer whose question was cut off.
        while window and window[0].get("role") != "user":
            window.popleft()

    def __len__(self) -> int:
        return len(self._conversations)

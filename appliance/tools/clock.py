"""The clock tool: the current time and date in a timezone."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from appliance.tools.base import Tool, ToolError


class Clock(Tool):
    name = "clock"
    description = ("Get the current date and time. Optional 'timezone' as an IANA name, "
                   "e.g. 'Europe/Berlin'; default is this node's timezone.")
    parameters = {"type": "object",
                  "properties": {"timezone": {"type": "string", "maxLength": 64}},
                  "additionalProperties": False}

    def __init__(self, default_timezone: str = "") -> None:
        self.default_timezone = default_timezone

    async def call(self, args: dict[str, Any]) -> Any:
        name = args.get("timezone") or self.default_timezone
        if name:
            try:
                tz: dt.tzinfo = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                raise ToolError(f"unknown timezone {name!r}; use an IANA name "
                                "like Europe/Berlin") from None
            now = dt.datetime.now(tz)
        else:
            now = dt.datetime.now().astimezone()
        return {"iso": now.isoformat(timespec="seconds"), "date": now.strftime("%Y-%m-%d"),
                "time": now.strftime("%H:%M"), "weekday": now.strftime("%A"),
                "timezone": name or now.tzname() or "local"}

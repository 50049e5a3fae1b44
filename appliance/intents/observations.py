"""A tool's observation said as a short answer, for when the model's own answer cannot be
used (it repeated a call, wrote the call as text, or contradicted the tool)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from appliance.intents import speech
from appliance.intents.language import Language

#: Longest value read out of a world-model entry.
MAX_VALUE_CHARS = 200


def describe(lang: Language, name: str, observation: dict[str, Any]) -> str | None:
    """The answer the observation gives, or None when there is no short way to say it."""
    if not observation.get("ok"):
        return lang.say("tool_failed", problem=str(observation.get("error", "")))
    result = observation.get("result")
    if not isinstance(result, dict):
        return None
    if name == "calculator" and isinstance(result.get("value"), int | float):
        value, exact = speech.number(result["value"])
        return lang.say("tool_value" if exact else "tool_value_about", value=value)
    if name == "clock" and "iso" in result:
        now = dt.datetime.fromisoformat(str(result["iso"]))
        return lang.say("clock_full", time=speech.clock_time(lang, now),
                        weekday=speech.weekday(lang, now), month=speech.month(lang, now),
                        day=now.day, year=now.year)
    if name == "timers" and "set" in result:
        return lang.say("timer_started", duration=speech.duration(lang,
                                                                  result["set"]["seconds"]))
    if name == "world_get" and "key" in result:
        entry = result.get("value")
        if isinstance(entry, dict) and {"subject", "verb", "value"} <= set(entry):
            return lang.say("recalled", subject=str(entry["subject"]), verb=entry["verb"],
                            value=speech.person(lang, str(entry["value"])))
        return lang.say("world_value", key=result["key"], value=_value(entry))
    if name == "world_set" and "key" in result:
        return lang.say("world_set", key=result["key"], value=_value(result.get("value")))
    return None


def _value(value: Any) -> str:
    if isinstance(value, dict) and {"subject", "verb", "value"} <= set(value):
        text = f"{value['verb']} {value['value']}"  # a remembered fact (appliance/intents/memory)
    elif isinstance(value, dict):
        text = ", ".join(f"{k} {_value(v)}" for k, v in value.items())
    elif isinstance(value, list):
        text = ", ".join(_value(v) for v in value)
    else:
        text = str(value) if isinstance(value, str) else json.dumps(value)
    return text[:MAX_VALUE_CHARS]

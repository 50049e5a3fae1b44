""""don't wake me up this weekend", "no alarm this weekend", "skip the alarm this
weekend", "don't remind me this weekend": the coming weekend's Saturday and Sunday left
out (each repeating alarm ringing then skips them, a one-off one then is cancelled).

"this weekend" said on a Saturday is today and tomorrow; on a Sunday, today alone. The
phrases are ``words.clock_times.weekend``; "every weekend" and "on weekends" repeat
(:mod:`appliance.intents.repeats`) and are not these."""

from __future__ import annotations

import datetime as dt
from typing import Any

from appliance.intents import alarm_said as told
from appliance.intents import repeats
from appliance.intents.turn import Turn

#: Saturday and Sunday (``date.weekday()``).
SATURDAY, SUNDAY = 5, 6


def days(said: str, now: dt.datetime, words: dict[str, Any]) -> list[dt.date] | None:
    """The days of the weekend ``said`` names, from today on; None when it names none.
    ``said`` comes without the thanks after it (:func:`alarm_said.courteous`)."""
    if " ".join(repeats.words(said)) not in words["clock_times"]["weekend"]:
        return None
    today = now.date()
    if today.weekday() == SUNDAY:
        return [today]
    saturday = today + dt.timedelta(days=SATURDAY - today.weekday())
    return [saturday, saturday + dt.timedelta(days=1)]


async def skip(turn: Turn, alarms: list[dict[str, Any]], weekend: list[dt.date],
               now: dt.datetime, kind: str) -> str:
    """None of ``alarms`` (of ``kind``) on the days of ``weekend``; the answer says which
    days were left out."""
    noun = kind if kind == "reminder" else "alarm"
    ringing = [(a, [d for d in weekend if told.rings_on(a, d, now)]) for a in alarms]
    ringing = [(a, on) for a, on in ringing if on]
    if not ringing:
        off = [d for d in weekend if any(told.off_on(a, d, now) for a in alarms)]
        return turn.lang.say(f"{noun}_already_off" if off else f"{noun}_not_found_on_day",
                             on_day=on_days(turn, off or weekend, now))
    result: dict[str, Any] = {}
    for alarm, on in ringing:
        calls = [{"action": "skip", "id": alarm["id"], "on": d.isoformat()} for d in on] \
            if alarm.get("repeat") else [{"action": "cancel", "id": alarm["id"]}]
        for args in calls:
            observation = await turn.call("timers", args)
            if not observation["ok"]:
                return turn.lang.say("tool_failed", problem=observation["error"])
            result = observation["result"]
    said = on_days(turn, sorted({d for _, on in ringing for d in on}), now)
    if len(ringing) == 1 and "timer" in result:  # one repeating one: its next ring said
        return turn.lang.say(f"{noun}_skipped", **told.fields(turn, result["timer"], now),
                             on_day=said)
    if len(ringing) == 1:  # one one-off one
        return turn.lang.say(f"{noun}_cancelled", **told.fields(turn, ringing[0][0], now))
    return turn.lang.say(f"{noun}_skipped_all", on_day=said)


def on_days(turn: Turn, weekend: list[dt.date], now: dt.datetime) -> str:
    """"on Saturday and Sunday", "tomorrow and Sunday", "today and tomorrow", "today"."""
    said = [told.day_said(turn, dt.datetime.combine(d, dt.time(12)), now.replace(tzinfo=None))
            for d in weekend]
    first = told.on_day(turn, weekend[0], now)
    return turn.lang.join([first, *said[1:]])

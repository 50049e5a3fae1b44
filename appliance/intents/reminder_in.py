"""A reminder in so long: "remind me in an hour to check the laundry" is a reminder at
the clock time an hour from now (an alarm of the timers tool with those words), listed
and cancelled with the other reminders (appliance/intents/alarms.py)."""

from __future__ import annotations

import datetime as dt

from appliance.intents import alarm_said as told
from appliance.intents import clock, speech, timers
from appliance.intents.alarms import _alarms
from appliance.intents.recognizer import Match
from appliance.intents.turn import Handler, Turn


async def remind_in(match: Match, turn: Turn) -> str | None:
    """"remind me in an hour to check the laundry": a reminder at the clock time an hour
    from now, listed and cancelled with the other reminders and said when it comes as
    "It's 8:17 PM: check the laundry." (a countdown would say "Your check the laundry
    timer is done."); answered as said: "OK, in 1 hour: check the laundry."."""
    seconds = timers.seconds_of(match.slots)
    name = speech.person(turn.lang, timers.timer_name(turn, match), yours=False)[:100]
    if seconds < 1 or not name:
        return None
    found = await _alarms(turn)
    if isinstance(found, str):
        return found
    now = found.now
    when = clock.shifted(now, dt.timedelta(seconds=round(seconds)))
    for alarm in found.alarms:  # said twice: set once
        if alarm["label"] == name and not alarm.get("repeat") and abs(
                dt.datetime.fromisoformat(alarm["at"]).timestamp() - when.timestamp()) <= 90:
            return turn.lang.say("reminder_exists", **told.fields(turn, alarm, now))
    observation = await turn.call("timers", {"action": "set", "label": name,
                                             "at": when.isoformat(timespec="seconds")})
    if not observation["ok"]:
        return turn.lang.say("tool_failed", problem=observation["error"])
    return turn.lang.say("timer_started_reminder", name=name,
                         duration=speech.duration(turn.lang, round(seconds)))


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    "ReminderIn": (remind_in, ("clock", "timers")),
}

"""Which alarm a request means: by its time ("the 7 am alarm", either 7 when no am or pm is
said), its day ("the alarm for tomorrow", "Friday's" said on a Friday: today's or next
week's), its days ("the weekday alarm"), its words ("the reminder about the bins") or
its kind ("the alarm" is a wake-up alarm when there is one)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from appliance.intents import alarm_said as told
from appliance.intents import clocktimes, repeats, speech, timers
from appliance.intents.recognizer import Match
from appliance.intents.turn import Turn
from appliance.tools.timers import ALARM_LABEL as ALARM


def select(turn: Turn, match: Match, alarms: list[dict[str, Any]], now: dt.datetime
            ) -> tuple[dict[str, Any], dt.date | None] | str | None:
    """The one alarm the request means and the day named for it if any; an answer saying
    why there is none; None when the words said are no clock time ("turn off the smoke
    alarm" is not ours)."""
    said = match.said.get("when", "")
    times: set[dt.datetime] = set()
    table = turn.lang.words["clock_times"]
    repeat, left = repeats.find(repeats.words(said), table, turn.lang.words["weekdays"])
    if repeat is None and (repeat := repeats.adjective(repeats.words(said), table)):
        left = []  # "the weekday alarm", "my daily alarm"
    if repeat is not None and repeat.days:  # "cancel the weekday alarm", "... every day at 7"
        alarms = [a for a in alarms if a.get("repeat") == list(repeat.days)]
        said = " ".join(left)
        if not alarms:
            return turn.lang.say("alarm_not_found", when=told.plain(match.said["when"]))
    if said:
        # "the 6:30 alarm" is the one at 6:30 AM or PM, "tomorrow at 7" the one then first.
        waking = bool(match.slots.get("morning"))
        readings = (said,) if waking else (said, f"{said} am", f"{said} pm")
        times = {t for text in readings if (t := clocktimes.moment(
            text, now, turn.lang.words, turn.lang.numbers, waking=waking)) is not None}
        if not times and clocktimes.day(said, now, turn.lang.words) is None:
            return None
    if not alarms:
        return turn.lang.say("alarm_none")
    # The days the words name ("Monday" said on a Monday: today's or next week's).
    named = clocktimes.days_named(said, now, turn.lang.words)
    days = [t.date() for t in sorted(times)] if times else named
    kind = match.slots.get("kind")  # "the alarm": a wake-up alarm if one is meant
    if said and not times:  # "cancel the alarm for tomorrow": the one on that day
        # "the alarm for tomorrow" is no reminder when there are wake-up alarms at all;
        # "tomorrow's reminder" is never a wake-up alarm.
        alarms = told.of_kind(alarms, kind) or ([] if kind == "reminder" else alarms)
        if not alarms and days:
            return turn.lang.say("reminder_not_found_on_day",
                                 on_day=told.on_day(turn, days[0], now))
        on = [[a for a in alarms if told.rings_on(a, d, now)] for d in days]
        for d, found in zip(days, on, strict=True):
            if found:
                break
            if any(told.off_on(a, d, now) for a in alarms):
                # Said again: not next week's as well.
                return turn.lang.say("alarm_already_off", on_day=told.on_day(turn, d, now))
        alarms = next((found for found in on if told.of_kind(found, kind)),
                      next((found for found in on if found), []))
        if not alarms:
            return turn.lang.say("alarm_not_found", when=told.plain(said))
    elif said:
        # A repeating alarm's next time may be another day's than the one named.
        hours = {(t.hour, t.minute) for t in times}
        if not named:
            days = []
        alarms = [a for a in alarms if told.local(a, now) in times] or \
            [a for a in alarms if (told.local(a, now).hour, told.local(a, now).minute) in hours
             and (not days or any(told.rings_on(a, d, now) for d in days))]
        if not alarms:
            return turn.lang.say("alarm_not_found", when=told.plain(said))
    elif match.said.get("name"):
        # Its words in any order: "take out the bins" is "take the bins out"; a day at
        # their end is the day ("don't remind me to take my pills tomorrow").
        name = speech.person(turn.lang, match.said["name"], yours=False)
        words = name.split()
        for size in range(min(3, len(words) - 1), 0, -1):
            tail = " ".join(words[-size:])
            if clocktimes.day(tail, now, turn.lang.words) is not None:
                name, days = " ".join(words[:-size]), \
                    clocktimes.days_named(tail, now, turn.lang.words)
                break
        alarms = [a for a in alarms if a["label"] != ALARM
                  and timers.alike(turn, name, a["label"])]
        if not alarms:
            return turn.lang.say("reminder_not_found", name=name)
    alarms = told.of_kind(alarms, kind) or alarms
    if len(alarms) == 1 or (alarms and match.slots.get("next")):
        # "skip the next alarm": the soonest
        return alarms[0], next((d for d in days if told.rings_on(alarms[0], d, now)), None)
    kind = "reminder" if all(a["label"] != ALARM for a in alarms) else "alarm"
    return turn.lang.say(f"{kind}_which", count=len(alarms),
                         items=turn.lang.join([told.item(turn, a, now) for a in alarms]))

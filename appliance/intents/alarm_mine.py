""""set my alarm for 6:30", "set my weekday alarm for 6:30", "set my wake up time to 7":
the wake-up alarm the user has, moved (:func:`appliance.intents.alarms.change`), or a new
one when there is none to move.

Which: the wake-up alarms (not the reminders), those on the days said before "alarm"
("my weekday alarm") when days are said; else those that ring within the slot ``near``'s
hours of the time asked for on the clock (3 for "my alarm": "set my alarm for 8 pm" does
not move the 6 AM one; 6 for "my wake up time") and, when they ring once, today or
tomorrow. One is moved; several that repeat are asked about
("Which one?"); none, or only one-off ones (a morning's run of alarms: "set my alarm for
5:30" beside a 6 and a 7:15 adds one), or a time with a day of its own ("set my alarm
for 6:30 tomorrow"), is a new alarm, as "set an alarm for 6:30" is."""

from __future__ import annotations

import datetime as dt
from typing import Any

from appliance.intents import alarm_said, clocktimes, repeats
from appliance.intents.recognizer import Match
from appliance.intents.turn import Turn
from appliance.tools.timers import ALARM_LABEL as ALARM


def candidates(turn: Turn, match: Match, alarms: list[dict[str, Any]], now: dt.datetime
               ) -> list[dict[str, Any]] | None:
    """The wake-up alarms "my ... alarm" can mean; None when the words before "alarm"
    are no days ("set my loud alarm for 7" is not ours). A time with a day or days of its
    own ("set my alarm for 6:30 tomorrow", "... for 7 every weekday") is a new alarm's,
    as it was before "my" moved one."""
    words, when = turn.lang.words, repeats.words(match.said.get("when", ""))
    if clocktimes.days_named(" ".join(when), now, words) or \
            repeats.find(when, words["clock_times"], words["weekdays"])[0] is not None:
        return []
    asked = clocktimes.moment(match.said.get("when", ""), now, words, turn.lang.numbers,
                              waking=True)
    if asked is None:
        return []
    hours = float(match.slots.get("near") or 0)
    alarms = [a for a in alarms if a["label"] == ALARM and
              (not hours or _near(a, asked, now, hours))]
    said = match.said.get("repeat")
    if said:
        repeat = repeats.adjective(repeats.words(said), turn.lang.words["clock_times"])
        if repeat is None or not repeat.days:
            return None
        alarms = [a for a in alarms if a.get("repeat") == list(repeat.days)]
    return alarms


def _near(alarm: dict[str, Any], asked: dt.datetime, now: dt.datetime, hours: float) -> bool:
    """Whether ``alarm`` rings near the clock time asked for, and (ringing once) today or
    tomorrow."""
    rings = alarm_said.local(alarm, now)
    if not alarm.get("repeat") and (rings.date() - now.date()).days > 1:
        return False
    minutes = abs((rings.hour * 60 + rings.minute) - (asked.hour * 60 + asked.minute))
    return min(minutes, 24 * 60 - minutes) <= hours * 60


def new(alarms: list[dict[str, Any]]) -> bool:
    """Whether a new alarm is meant, given the ones "my ... alarm" can mean."""
    return not alarms or (len(alarms) > 1 and not any(a.get("repeat") for a in alarms))


def which(match: Match) -> Match:
    """The request as choosing among the alarms it can mean, by nothing more."""
    return Match(match.intent, {"morning": True})


def as_set(match: Match) -> Match:
    """The request as setting a new wake-up alarm: "set my weekday alarm for 6:30" is
    "set a weekday alarm for 6:30"."""
    said = {k: v for k, v in match.said.items() if k in ("when", "repeat")}
    return Match("AlarmSet", {"morning": True}, said)

"""The worker's hand-over to the event loop: a first piece at once, later text in batches."""

from __future__ import annotations

import asyncio
import time

from appliance.llm.engine.sequence import (
    FIRST_PIECES,
    HANDOVER_S,
    Outbox,
    Prepared,
    Sequence,
)


def _sequence(loop: asyncio.AbstractEventLoop, outbox: Outbox) -> Sequence:
    prep = Prepared(tokens=[1], max_tokens=8, stops=(), temperature=0.0, top_p=1.0, seed=0,
                    constraint=None)
    return Sequence(prep, loop, outbox=outbox)


async def _events(seq: Sequence) -> list[tuple[str, object]]:
    await asyncio.sleep(0)  # let call_soon_threadsafe's callbacks run
    out = []
    while not seq.events.empty():
        out.append(seq.events.get_nowait())
    return out


def _past_the_first_pieces(seq: Sequence, outbox: Outbox) -> None:
    for _ in range(FIRST_PIECES - 1):
        seq.send("text", (" word", None))
        outbox.flush(force=False)


async def test_the_first_pieces_go_at_once_and_later_ones_wait_for_company() -> None:
    outbox = Outbox()
    seq = _sequence(asyncio.get_running_loop(), outbox)
    seq.send("text", ("Hello", None))
    outbox.flush(force=False)
    assert await _events(seq) == [("text", ("Hello", None))]  # the first token: no wait
    _past_the_first_pieces(seq, outbox)
    assert len(await _events(seq)) == FIRST_PIECES - 1  # each at once
    seq.send("text", (" there", None))
    outbox.flush(force=False)
    assert await _events(seq) == []  # held to go with the next pieces
    seq.send("text", (",", None))
    time.sleep(HANDOVER_S)
    outbox.flush(force=False)
    assert await _events(seq) == [("text", (" there", None)), ("text", (",", None))]
    seq.send("text", (" friend", None))
    seq.send("end", ("stop", {}, "Hello there, friend", None))
    outbox.flush(force=False)  # an end goes at once, with the text before it
    assert [kind for kind, _ in await _events(seq)] == ["text", "end"]


async def test_the_end_of_a_sentence_goes_at_once_for_the_voice_to_speak_it() -> None:
    outbox = Outbox()
    seq = _sequence(asyncio.get_running_loop(), outbox)
    seq.send("text", ("The", None))
    _past_the_first_pieces(seq, outbox)
    await _events(seq)
    seq.send("text", (" lights", None))
    outbox.flush(force=False)
    assert await _events(seq) == []
    seq.send("text", (" are on.", None))
    outbox.flush(force=False)
    assert [value[0] for _, value in await _events(seq)] == [" lights", " are on."]
    # A clause end of a later sentence waits; that sentence's end goes at once.
    seq.send("text", (" Also,", None))
    outbox.flush(force=False)
    assert await _events(seq) == []
    seq.send("text", (" the heating is on!", None))
    outbox.flush(force=False)
    assert [value[0] for _, value in await _events(seq)] == [" Also,", " the heating is on!"]


async def test_a_clause_end_of_the_first_sentence_goes_at_once() -> None:
    outbox = Outbox()
    seq = _sequence(asyncio.get_running_loop(), outbox)
    _past_the_first_pieces(seq, outbox)
    seq.send("text", (" word", None))
    outbox.flush(force=False)
    await _events(seq)
    seq.send("text", (" and then,", None))
    outbox.flush(force=False)
    assert [value[0] for _, value in await _events(seq)] == [" and then,"]


async def test_a_forced_flush_hands_over_everything() -> None:
    outbox = Outbox()
    seq = _sequence(asyncio.get_running_loop(), outbox)
    seq.send("text", ("A", None))
    outbox.flush()
    seq.send("text", ("B", None))
    outbox.flush(force=True)  # the worker is about to wait: nothing may stay behind
    assert [value for _, value in await _events(seq)] == [("A", None), ("B", None)]

"""The Redis room log's durability ledger on its own (no Redis): which of a process's
acknowledged events it still owes the cold store, and when it writes them itself."""

from ask2live.cache.ledger import DurabilityLedger
from ask2live.events import Event


def event(session_id: int, ms: int, seq: int = 0) -> Event:
    return Event(f"{ms}-{seq}", session_id, "chat", b'{"type":"chat"}')


def test_an_appended_event_is_owed_until_the_cold_store_has_it():
    ledger = DurabilityLedger()
    ledger.note_epoch(1, "100-0")
    e = event(1, 200)
    ledger.appended(e, "100-0")
    assert len(ledger) == 1 and ledger.oldest_ms() == 200 and ledger.rooms() == {1}
    assert ledger.flushed(e) is False  # not an orphan: its stream entry is to be acknowledged
    assert len(ledger) == 0 and ledger.oldest_ms() is None and ledger.rooms() == set()


def test_a_new_epoch_turns_the_older_epochs_events_into_orphans_of_that_room_only():
    ledger = DurabilityLedger()
    ledger.note_epoch(1, "100-0")
    ledger.note_epoch(2, "100-0")
    a, b, other = event(1, 200), event(1, 201), event(2, 202)
    for e in (a, b, other):
        ledger.appended(e, "100-0")
    assert ledger.note_epoch(1, "100-0") == 0  # same epoch: nothing lost
    assert ledger.note_epoch(1, "300-0") == 2  # Redis lost room 1
    assert ledger.orphans(10) == [a, b]
    assert ledger.orphans(1) == [a]
    assert ledger.flushed(a) is True  # an orphan: written by this process, nothing to acknowledge
    assert len(ledger) == 2  # b (orphan) and room 2's event
    ledger.appended(event(1, 400), "300-0")
    assert ledger.note_epoch(1, "300-0") == 0


def test_the_first_epoch_seen_orphans_nothing():
    ledger = DurabilityLedger()
    ledger.appended(event(1, 200), "")
    assert ledger.note_epoch(1, "100-0") == 0
    assert ledger.orphans(10) == []


def test_settled_events_are_those_the_group_passed_and_does_not_still_hold():
    ledger = DurabilityLedger()
    events = [event(1, ms) for ms in (100, 200, 300, 400)]
    for e in events:
        ledger.appended(e, "1-0")
    ledger.appended(event(2, 150), "1-0")
    assert ledger.settled(1, delivered=(300, 0), min_pending=None) == events[:3]
    assert ledger.settled(1, delivered=(300, 0), min_pending=(200, 0)) == events[:1]
    assert ledger.settled(1, delivered=(50, 0), min_pending=None) == []


def test_release_keeps_what_the_cold_store_lacks_as_an_orphan():
    ledger = DurabilityLedger()
    stored_one, lost_one = event(1, 100), event(1, 200)
    for e in (stored_one, lost_one):
        ledger.appended(e, "1-0")
    missing = ledger.release(1, [stored_one, lost_one], stored={(100, 0)})
    assert missing == [lost_one]
    assert ledger.orphans(10) == [lost_one] and len(ledger) == 1


def test_overdue_events_are_old_unsettled_ones():
    ledger = DurabilityLedger()
    old, old_settled, recent = event(1, 100), event(1, 110), event(1, 5_000)
    for e in (old, old_settled, recent):
        ledger.appended(e, "1-0")
    assert ledger.overdue(1, older_than_ms=1_000, settled=[old_settled]) == [old]


def test_unflushed_reads_own_and_orphaned_events_strictly_between_positions():
    ledger = DurabilityLedger()
    ledger.note_epoch(1, "1-0")
    a, b, c = event(1, 100), event(1, 200), event(1, 300)
    ledger.appended(a, "1-0")
    ledger.note_epoch(1, "2-0")  # a is an orphan now
    ledger.appended(b, "2-0")
    ledger.appended(c, "2-0")
    assert sorted(e.id for e in ledger.unflushed(1, (100, 0), (300, 0))) == ["200-0"]
    assert sorted(e.id for e in ledger.unflushed(1, (0, 0), (999, 0))) == ["100-0", "200-0", "300-0"]
    assert ledger.unflushed(2, (0, 0), (999, 0)) == []

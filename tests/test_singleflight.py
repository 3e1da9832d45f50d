"""SingleFlight: one leader per key, joiners wait for its outcome without holding the table lock."""

from __future__ import annotations

import threading

import pytest

from imagebuild_nb.singleflight import SingleFlight


def test_joiners_get_the_leaders_outcome_and_the_next_call_leads_anew() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    flight, leading = flights.lead_or_join("a")
    joined: list[str | None] = []
    joiners = [threading.Thread(target=lambda: joined.append(flights.lead_or_join("a")[0]
                                                             .outcome(10))) for _ in range(5)]
    for thread in joiners:
        thread.start()
    flights.share(flight, "running")
    flights.land("a", flight, "running")
    for thread in joiners:
        thread.join(10)
    assert leading and joined == ["running"] * 5 and flight.joiners == 5 and len(flights) == 0
    assert flights.lead_or_join("a")[1]


def test_a_failed_leader_releases_its_joiners_with_nothing() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    flight, _ = flights.lead_or_join("a")
    joiner, leading = flights.lead_or_join("a")
    flights.land("a", flight, None)
    assert not leading and joiner.outcome(1) is None


def test_a_shared_value_survives_landing_without_one() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    flight, _ = flights.lead_or_join("a")
    flights.share(flight, "handle")
    flights.land("a", flight, None)
    assert flight.outcome(1) == "handle"


def test_other_keys_never_wait_on_a_flight_in_progress() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    flight, _ = flights.lead_or_join("a")
    waiting = threading.Thread(target=flight.outcome, args=(30,), daemon=True)
    waiting.start()
    other, leading = flights.lead_or_join("b")  # while a joiner of "a" waits
    flights.land("b", other, "b-done")
    assert leading and other.outcome(1) == "b-done" and waiting.is_alive()
    flights.land("a", flight, "a-done")
    waiting.join(10)
    with pytest.raises(TimeoutError):
        flights.lead_or_join("c")[0].outcome(0.01)

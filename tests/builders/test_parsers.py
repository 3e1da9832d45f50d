"""Fast tier: the two log formats parsed into events (samples captured from dockerd 20.10)."""

from __future__ import annotations

import io
import tarfile
import tracemalloc
from collections.abc import Callable, Iterator

from imagebuild_nb.builders.context import InMemoryContext
from imagebuild_nb.builders.legacy_stream import LegacyStreamParser
from imagebuild_nb.builders.lines import MAX_LINE
from imagebuild_nb.builders.plain_progress import PlainProgressParser
from imagebuild_nb.builders.target import BuildTarget
from imagebuild_nb.events import BuildEvent, CacheHit, LogLine, OutputClipped, StepStarted

BUILDKIT_SAMPLE = """\
#1 [internal] load remote build context
#1 sha256:609df5104e88db96cca547b49d3e18a0b188259d0b8251ecaccfbe4390e87b70
#1 DONE 0.0s

#4 [stage-0 1/4] FROM localhost:5001/library/busybox:latest
#4 CACHED

#5 [stage-0 2/4] RUN echo hi && sleep 0.2
#5 sha256:cef332cd81b35584c76006488cee10bb843403f0f9c388cc1ac24a3f1dde9cfd
#5 0.085 hi
#5 DONE 0.5s

#8 [stage-0 3/4] RUN seq 1 100000
#8 0.220 [output clipped, log limit 200KiB/s reached]
#8 DONE 0.5s

#7 [stage-0 4/4] RUN sh -c "echo bad; exit 3"
#7 0.057 bad
#7 ERROR: executor failed running [/bin/sh -c sh -c "echo bad; exit 3"]: exit code: 3
------
 > [stage-0 4/4] RUN sh -c "echo bad; exit 3":
------
executor failed running [/bin/sh -c sh -c "echo bad; exit 3"]: exit code: 3
"""


def test_buildkit_plain_progress_becomes_events() -> None:
    parser = PlainProgressParser()
    events = [e for line in BUILDKIT_SAMPLE.splitlines() for e in parser.feed(line)]
    steps = [(e.number, e.total, e.instruction) for e in events if isinstance(e, StepStarted)]
    assert steps[1] == (2, 4, "RUN echo hi && sleep 0.2")
    assert [e.step for e in events if isinstance(e, CacheHit)] == [1]
    assert LogLine(text="hi", step=2, time=0) in [
        LogLine(text=e.text, step=e.step, stream=e.stream, time=0)
        for e in events if isinstance(e, LogLine)]
    clipped = [e for e in events if isinstance(e, OutputClipped)]
    assert len(clipped) == 1 and clipped[0].step == 3
    assert "BUILDKIT_STEP_LOG_MAX_SIZE" in clipped[0].message and parser.clipped
    assert parser.failed_step == 'step 4: RUN sh -c "echo bad; exit 3"'
    assert parser.exit_code == 3
    assert parser.failure_tail() == ("bad",)


def test_legacy_stream_chunks_are_reassembled_into_lines() -> None:
    parser = LegacyStreamParser()
    records = [
        {"stream": "Step 1/2 : FROM busybox\n"}, {"stream": " ---> b744cc612cb0\n"},
        {"stream": "Step 2/2 : RUN printf 'a\\nb'\n"}, {"stream": " ---> Using cache\n"},
        {"stream": " ---> Running in 0123456789ab\n"}, {"stream": "li"}, {"stream": "ne1\nline"},
        {"stream": "2\n"}, {"error": "The command '/bin/sh -c x' returned a non-zero code: 7",
                            "errorDetail": {"code": 7, "message": "x"}},
    ]
    events = [e for record in records for e in parser.feed(record)]
    assert [e.text for e in events if isinstance(e, LogLine)] == ["line1", "line2"]
    assert [e.step for e in events if isinstance(e, CacheHit)] == [2]
    assert parser.containers == ["0123456789ab"]
    assert (parser.exit_code, parser.failed_step) == (7, "step 2: RUN printf 'a\\nb'")
    assert list(parser.tail) == ["line1", "line2"]


def test_target_puts_the_driver_form_of_the_dockerfile_first_in_the_context() -> None:
    target = BuildTarget(
        uri="localhost:5001/demo:1",
        dockerfiles={"buildkit": "FROM a\nRUN --mount=type=cache,target=/c true\n",
                     "plain": "FROM a\nRUN true\n"},
        context=InMemoryContext({"src/app.py": "print(1)\n"}),
    )
    for driver, expected in (("buildkit", "--mount"), ("docker-api", "RUN true")):
        request = target.request(driver)
        buffer = io.BytesIO()
        request.context.write_tar(buffer)
        buffer.seek(0)
        with tarfile.open(fileobj=buffer) as tar:
            assert tar.getnames() == ["Dockerfile", "src/app.py"]
            dockerfile = tar.extractfile("Dockerfile").read().decode()  # type: ignore[union-attr]
        assert expected in dockerfile and request.push
    assert BuildTarget(uri="local/x:1", dockerfiles={"plain": ""},
                       context=InMemoryContext({})).request("buildkit").push is False


# A failing RUN that writes to stdout and stderr, one line in colour, as dockerd 20.10 sends it:
# stderr comes wrapped in ESC[91m ... ESC[0m, and the reset sticks to the next line.
LEGACY_FAILURE = [
    {"stream": "Step 2/2 : RUN ./test.sh"}, {"stream": "\n"},
    {"stream": " ---> Running in edfd350454bb\n"},
    {"stream": "out1\n\x1b[31mred\x1b[0m\n"},
    {"stream": "\x1b[91merr1\nerr2\n\x1b[0m"},
    {"stream": "Removing intermediate container edfd350454bb\n"},
    {"errorDetail": {"code": 4, "message": "The command '/bin/sh -c ./test.sh' returned a "
                                           "non-zero code: 4"},
     "error": "The command '/bin/sh -c ./test.sh' returned a non-zero code: 4"},
]


def test_legacy_failure_tail_has_no_ansi_codes_and_no_engine_chatter() -> None:
    parser = LegacyStreamParser()
    events = [e for record in LEGACY_FAILURE for e in parser.feed(record)]
    assert list(parser.tail) == ["out1", "red", "err1", "err2"]
    texts = [e.text for e in events if isinstance(e, LogLine)]
    assert not [t for t in texts if "Removing intermediate container" in t or "--->" in t]
    assert parser.containers == ["edfd350454bb"] and parser.exit_code == 4


def test_buildkit_failure_tail_has_no_ansi_codes() -> None:
    parser = PlainProgressParser()
    lines = ["#5 [2/2] RUN ./test.sh", "#5 0.101 \x1b[32mok\x1b[0m",
             "#5 0.102 \x1b[1;31merror:\x1b[0m bad \x1b]0;title\x07input",
             "#5 0.103 fetching 10%\rfetching 100%",
             "#5 ERROR: executor failed running [/bin/sh -c ./test.sh]: exit code: 2"]
    for line in lines:
        list(parser.feed(line))
    assert parser.failure_tail() == ("ok", "error: bad input", "fetching 100%")


def _long_line_run(feed: Callable[[str], Iterator[BuildEvent]], prefix: str,
                   size: int = 10_000_000,
                   chunk: int = 32 * 1024) -> tuple[list[BuildEvent], int, int]:
    """Feed one ``size``-character line in ``chunk`` pieces (as pipes and the engine deliver
    it); returns the events, how many pieces went in before the first log line came out, and
    the peak memory allocated meanwhile."""
    events: list[BuildEvent] = []
    first_seen = 0
    tracemalloc.start()
    try:
        events += feed(prefix)
        piece = "x" * chunk
        for fed in range(1, size // chunk + 1):
            events += feed(piece)
            if not first_seen and any(isinstance(e, LogLine) for e in events):
                first_seen = fed
        events += feed("\nafter\n")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return events, first_seen, peak


def test_a_10_mb_line_in_the_legacy_stream_comes_out_cut_at_once_in_bounded_memory() -> None:
    parser = LegacyStreamParser()
    list(parser.feed({"stream": "Step 2/2 : RUN ./big.sh\n"}))
    events, first_seen, peak = _long_line_run(lambda text: parser.feed({"stream": text}), "")
    logs = [e for e in events if isinstance(e, LogLine)]
    assert first_seen == 1  # the head shows as soon as it is longer than the limit
    assert len(logs[0].text) == MAX_LINE and logs[-1].text == "after"
    clipped = [e for e in events if isinstance(e, OutputClipped)]
    assert len(clipped) == 1 and clipped[0].step == 2 and "cut" in clipped[0].message
    assert peak < 2 * 1024 * 1024, peak


def test_a_10_mb_line_of_plain_progress_comes_out_cut_at_once_in_bounded_memory() -> None:
    parser = PlainProgressParser()
    list(parser.feed("#5 [2/2] RUN ./big.sh"))
    events, first_seen, peak = _long_line_run(parser.feed_chunk, "#5 0.174 ")
    logs = [e for e in events if isinstance(e, LogLine)]
    assert first_seen == 1
    assert logs[0].text.startswith("xxx") and logs[0].step == 2
    assert [e.text for e in logs[1:]] == ["after"]
    clipped = [e for e in events if isinstance(e, OutputClipped)]
    assert len(clipped) == 1 and clipped[0].step == 2
    assert peak < 2 * 1024 * 1024, peak

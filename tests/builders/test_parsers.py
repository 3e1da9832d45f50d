"""Fast tier: the two log formats parsed into events (samples captured from dockerd 20.10)."""

from __future__ import annotations

import io
import tarfile

from imagebuild_nb.builders.context import InMemoryContext
from imagebuild_nb.builders.legacy_stream import LegacyStreamParser
from imagebuild_nb.builders.plain_progress import PlainProgressParser
from imagebuild_nb.builders.target import BuildTarget
from imagebuild_nb.events import CacheHit, LogLine, OutputClipped, StepStarted

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

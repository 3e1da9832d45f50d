"""Build submissions: the spec a client sends is validated with the client's own rules, and a
spec that fails them is a 400 naming the reason, never stored."""

from __future__ import annotations

import json
from typing import Any

import pytest

from imagebuild_nb.service.submission import Submission, SubmissionError
from imagebuild_nb.spec.image import Image
from tests.service.conftest import ServiceProcess, busybox_request
from tests.support.services import Registry

CONTEXT = "sha256:" + "a" * 64
HOSTILE_SPEC: dict[str, Any] = {
    "version": 999,
    "bogus": "<script>",
    "layers": [{"type": "commands", "commands": ["x\nFROM scratch"]}],
}


def valid_spec() -> dict[str, Any]:
    image = Image.from_debian_base(name="demo", registry="localhost:5001")
    return image.with_commands("echo hi").with_env_vars({"MODE": "prod"}).to_dict()


def submission(spec: dict[str, Any], uri: str = "localhost:5001/demo:1") -> dict[str, Any]:
    return {"uri": uri, "context": CONTEXT, "spec": spec}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({}, "bogus"),
        ({"bogus": None}, "version 999"),
        ({"bogus": None, "version": 1}, "base"),
    ],
    ids=["unknown field", "version", "no base"],
)
def test_a_spec_the_client_would_refuse_is_refused(change: dict[str, Any], reason: str) -> None:
    spec = {k: v for k, v in {**HOSTILE_SPEC, **change}.items() if v is not None}
    with pytest.raises(SubmissionError, match=f"spec is not a valid image spec: .*{reason}"):
        Submission.from_json(submission(spec))


@pytest.mark.parametrize(
    "layer",
    [{"type": "commands", "commands": ["--mount=type=bind,source=/,target=/h cat /h/etc/shadow"]},
     {"type": "apt_packages", "packages": ["git\nFROM scratch"]},
     {"type": "no-such-layer"}],
    ids=["command as RUN flag", "newline in a package", "unknown layer type"],
)
def test_layers_are_checked_as_the_client_checks_them(layer: dict[str, Any]) -> None:
    spec = valid_spec()
    spec["layers"].append(layer)
    with pytest.raises(SubmissionError, match="spec is not a valid image spec"):
        Submission.from_json(submission(spec))


def test_what_the_client_sends_passes_unchanged() -> None:
    spec = valid_spec()
    assert Submission.from_json(submission(spec)).spec == spec


# -- the real service over HTTP ---------------------------------------------------------------

@pytest.mark.engine
@pytest.mark.registry
def test_the_service_answers_400_with_the_reason_and_stores_nothing(
    service: ServiceProcess, plain_registry: Registry, busybox_base: str, unique_name: str,
    remove_images: list[str],
) -> None:
    uri = f"{plain_registry.host}/{unique_name}:v1"
    remove_images.append(uri)
    request = busybox_request(busybox_base, uri, "echo spec-checked")
    with service.client() as client:
        digest = client.upload_context(request)  # so only the spec can make it fail
    body = {"uri": uri, "context": digest, "push": False, "spec": HOSTILE_SPEC}
    with service.http() as http:
        refused = http.post("/imagebuild/api/builds", json=body)
        assert refused.status_code == 400, refused.text
        message = json.loads(refused.text)["message"]
        assert "spec is not a valid image spec" in message and "bogus" in message
        listed = http.get("/imagebuild/api/builds").json()
        records = listed["builds"] if isinstance(listed, dict) else listed
        assert not [r for r in records if r["uri"] == uri]
        accepted = http.post("/imagebuild/api/builds", json={**body, "spec": valid_spec()})
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["spec"] == valid_spec()
    with service.client() as client:
        client.wait(accepted.json()["id"])


@pytest.mark.parametrize(
    ("platform", "reason"),
    [
        ("linux/amd64\n", "is not a platform"),
        ("Linux/AMD64", "is not a platform"),
        ("linux", "is not a platform"),
        ("linux/amd64,,linux/arm64", "is not a platform"),
        (",".join(f"linux/arch{n}" for n in range(9)), "more than 8 platforms"),
        (["linux/amd64"], "platform must be a string"),
    ],
    ids=["newline", "upper case", "no arch", "empty item", "nine", "a list"],
)
def test_a_bad_platform_is_refused_naming_it(platform: object, reason: str) -> None:
    with pytest.raises(SubmissionError, match=reason):
        Submission.from_json({"uri": "localhost:5001/demo:1", "context": CONTEXT,
                              "platform": platform})


def test_platforms_are_one_canonical_set_and_part_of_the_build_identity() -> None:
    def parsed(platform: str | None) -> Submission:
        return Submission.from_json({"uri": "localhost:5001/demo:1", "context": CONTEXT,
                                     **({"platform": platform} if platform else {})})

    both = parsed("linux/arm64,linux/amd64,linux/arm64")
    assert both.platform == "linux/amd64,linux/arm64"
    assert both.dedup_key == parsed("linux/amd64,linux/arm64").dedup_key
    assert both.dedup_key != parsed("linux/arm64").dedup_key != parsed(None).dedup_key

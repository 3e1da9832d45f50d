"""Image references with Docker's rules (distribution/reference): which part is the registry."""

from __future__ import annotations

import pytest

from imagebuild_nb import Image
from imagebuild_nb.errors import SpecError
from imagebuild_nb.spec.reference import (
    ImageReference,
    validate_registry,
    validate_repository,
    validate_tag,
)


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag"),
    [
        ("localhost/x:1", "localhost", "x", "1"),  # 'localhost' is a registry host
        ("localhost:5001/team/x:1", "localhost:5001", "team/x", "1"),
        ("example.com/x", "example.com", "x", None),  # a '.' makes a host
        ("team/x:2", None, "team/x", "2"),
        ("localhost:3", None, "localhost", "3"),  # one component: a name with a tag
        ("busybox", None, "busybox", None),
    ],
)
def test_docker_reads_the_first_component_as_a_registry(text: str, registry: str | None,
                                                       repository: str, tag: str | None) -> None:
    ref = ImageReference.parse(text)
    assert (ref.registry, ref.repository, ref.tag) == (registry, repository, tag)
    assert ImageReference.parse(str(ref)) == ref


@pytest.mark.parametrize("name", ["localhost/x", "localhost/team/x", "example.com/x",
                                  "localhost:5001/x"])
def test_a_name_starting_with_a_registry_host_is_refused(name: str) -> None:
    """``name="localhost/x"`` without a registry used to make the URI ``localhost/x:<tag>``,
    which Docker pushes to localhost:443/80: the name must say nothing about a registry."""
    with pytest.raises(SpecError) as caught:
        Image.from_base("busybox:1", name=name).with_commands(["true"])
    assert caught.value.argument == "name"
    assert "registry" in str(caught.value) and "registry=" in (caught.value.hint or "")


def test_localhost_as_a_registry_is_explicit() -> None:
    img = Image.from_base("busybox:1", name="x", registry="localhost").with_commands(["true"])
    ref = ImageReference.parse(img.uri)
    assert (ref.registry, ref.repository) == ("localhost", "x")
    assert ref.registry_host == "localhost"  # where push and existence checks both go
    local = Image.from_base("busybox:1", name="local/x").with_commands(["true"])
    assert ImageReference.parse(local.uri).registry is None  # stays in the local engine


def test_a_reference_without_registry_cannot_hold_a_host_in_its_name() -> None:
    # Its text would mean something else: "localhost/x:1" names the registry localhost.
    with pytest.raises(SpecError):
        ImageReference(None, "localhost/x", "1")
    with pytest.raises(SpecError):
        ImageReference(None, "example.com/x", "1")
    assert str(ImageReference(None, "localhost", "1")) == "localhost:1"


@pytest.mark.parametrize(
    "call",
    [
        lambda: validate_tag("v1\n"),
        lambda: validate_tag("caf\u00e9"),  # Docker's \w is ASCII
        lambda: validate_repository("team/x\n"),
        lambda: validate_registry("localhost:5001\n"),
        lambda: ImageReference.parse("busybox@sha256:" + "a" * 64 + "\nFROM scratch"),
    ],
)
def test_line_breaks_and_non_ascii_are_not_part_of_a_reference(call: object) -> None:
    with pytest.raises(SpecError):
        call()  # type: ignore[operator]

"""The Image spec: constructors, uri/tag, validation at the call that received the input, JSON."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from imagebuild_nb import Image, SpecError
from imagebuild_nb.spec.reference import ImageReference


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("print('hi')\n")
    (tmp_path / "requirements.txt").write_text("six\n")
    (tmp_path / "Dockerfile").write_text("FROM busybox\nCOPY app.txt /\n")
    (tmp_path / "app.txt").write_text("x\n")
    (tmp_path / ".dockerignore").write_text("*.log\n")
    return tmp_path


def test_debian_base_uri_and_tag() -> None:
    img = Image.from_debian_base(python_version="3.11", name="analysis", registry="localhost:5001")
    assert img.uri == f"localhost:5001/analysis:{img.spec_hash[:32]}"
    assert img.tag == img.spec_hash[:32]
    assert img.reference == ImageReference("localhost:5001", "analysis", img.tag)
    assert not img.is_default_base


def test_unmodified_default_base_is_the_base_itself() -> None:
    img = Image.from_debian_base(python_version="3.12")
    assert img.is_default_base
    assert img.uri == "python:3.12-slim"
    assert not img.with_apt_packages("git").is_default_base


def test_registry_namespace_joins_the_name() -> None:
    img = Image.from_debian_base(name="analysis", registry="ghcr.io/org", tag="v1")
    assert img.uri == "ghcr.io/org/analysis:v1"
    assert img.reference.registry == "ghcr.io"
    assert img.reference.repository == "org/analysis"


def test_explicit_tag_keeps_spec_hash() -> None:
    a = Image.from_debian_base(name="x", tag="1.0").with_apt_packages("git")
    b = Image.from_debian_base(name="x", tag="1.0").with_apt_packages("curl")
    assert a.uri == b.uri == "x:1.0"
    assert a.spec_hash != b.spec_hash


def test_no_registry_keeps_image_local() -> None:
    img = Image.from_base("localhost:5001/base:1", name="x").with_commands(["true"])
    assert img.uri.startswith("x:")


def test_immutable_and_fluent() -> None:
    base = Image.from_debian_base(name="x")
    derived = base.with_apt_packages("git")
    assert base.layers == () and len(derived.layers) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.name = "y"  # type: ignore[misc]


def test_platform_counts_for_identity() -> None:
    a = Image.from_debian_base(name="x", platform="linux/amd64").with_apt_packages("git")
    b = Image.from_debian_base(name="x", platform="linux/arm64").with_apt_packages("git")
    assert a.platform == "linux/amd64"
    assert a.tag != b.tag


def test_from_dockerfile_context_defaults_to_its_folder(tree: Path) -> None:
    img = Image.from_dockerfile(tree / "Dockerfile", name="x", build_args={"V": "1"})
    assert img.base.context == str(tree)  # type: ignore[union-attr]
    assert img.uri.startswith("x:")
    with pytest.raises(SpecError, match="Dockerfile") as info:
        img.with_apt_packages("git")
    assert info.value.hint


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda i: i.with_apt_packages(["git"]), "packages"),
        (lambda i: i.with_apt_packages(), "packages"),
        (lambda i: i.with_apt_packages("git; rm -rf /"), "packages"),
        (lambda i: i.with_apt_packages("$(id)"), "packages"),
        (lambda i: i.with_pip_packages(["six"]), "packages"),
        (lambda i: i.with_pip_packages(), "packages"),
        (lambda i: i.with_pip_packages("six; echo pwned"), "packages"),
        (lambda i: i.with_pip_packages("six`id`"), "packages"),
        (lambda i: i.with_pip_packages("six\nRUN id"), "packages"),
        (lambda i: i.with_pip_packages("--index-url=http://evil"), "packages"),
        (lambda i: i.with_pip_packages("six", index_url="ftp://x"), "index_url"),
        (lambda i: i.with_pip_packages("six", extra_args=["--x\nRUN id"]), "extra_args"),
        (lambda i: i.with_commands([]), "commands"),
        (lambda i: i.with_commands([" "]), "commands"),
        (lambda i: i.with_env_vars({}), "env"),
        (lambda i: i.with_env_vars({"A B": "x"}), "env"),
        (lambda i: i.with_env_vars({"A": 1}), "env"),
        (lambda i: i.with_env_vars({"A": "line1\nRUN id"}), "env"),
        (lambda i: i.with_env_vars([("A", "b")]), "env"),
        (lambda i: i.with_workdir("app"), "path"),
        (lambda i: i.with_workdir("/app/$HOME"), "path"),
        (lambda i: i.with_source_folder("/nonexistent/folder"), "src"),
        (lambda i: i.with_source_file("/nonexistent/file"), "src"),
        (lambda i: i.with_requirements("/nonexistent/requirements.txt"), "path"),
        (lambda i: i.with_dockerignore("/nonexistent/.dockerignore"), "path"),
        (lambda i: i.with_ca_certificates(), "paths"),
        (lambda i: i.with_ca_certificates(["/etc/hostname"]), "paths"),
    ],
)
def test_invalid_input_fails_at_the_call_naming_the_argument(call, argument: str) -> None:
    img = Image.from_debian_base(name="x")
    with pytest.raises(SpecError) as info:
        call(img)
    assert info.value.argument == argument
    assert argument in str(info.value) or info.value.hint


def test_list_instead_of_varargs_says_how_to_unpack() -> None:
    with pytest.raises(SpecError, match=r"unpack it: with_apt_packages\(\*\['git'\]\)"):
        Image.from_debian_base().with_apt_packages(["git"])  # type: ignore[arg-type]


@pytest.mark.parametrize("dst", ["../etc", "/app/../../etc", "a/../../b", "/x/$(id)", 'a"b'])
def test_dst_outside_image_root_or_unsafe_is_rejected(tree: Path, dst: str) -> None:
    with pytest.raises(SpecError) as info:
        Image.from_debian_base().with_source_folder(tree / "src", dst=dst)
    assert info.value.argument == "dst"


def test_not_a_pem_file_is_rejected(tree: Path) -> None:
    with pytest.raises(SpecError, match="PEM"):
        Image.from_debian_base().with_ca_certificates(tree / "app.txt")


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"name": "Bad Name"}, "name"),
        ({"name": "localhost:5001/x"}, "name"),
        ({"registry": "http://localhost:5001"}, "registry"),
        ({"registry": "ghcr.io/Org"}, "registry"),
        ({"tag": "-bad"}, "tag"),
        ({"tag": "a" * 200}, "tag"),
        ({"platform": "amd64"}, "platform"),
        ({"python_version": "python3"}, "python_version"),
    ],
)
def test_bad_names_per_oci_grammar(kwargs: dict[str, str], argument: str) -> None:
    with pytest.raises(SpecError) as info:
        Image.from_debian_base(**kwargs)
    assert info.value.argument == argument


def test_from_base_rejects_bad_reference() -> None:
    with pytest.raises(SpecError):
        Image.from_base("Not A Reference!", name="x")


def test_source_file_into_folder_keeps_its_name(tree: Path) -> None:
    img = Image.from_debian_base().with_source_file(tree / "app.txt", dst="/opt/")
    assert img.layers[0].dst == "/opt/app.txt"  # type: ignore[attr-defined]


def test_relative_paths_resolve_against_cwd(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree)
    img = Image.from_debian_base().with_source_folder("src", dst="/app")
    assert img.layers[0].src == str(tree / "src")  # type: ignore[attr-defined]


def _every_layer(tree: Path) -> Image:
    return (Image.from_debian_base(python_version="3.11", name="every", registry="localhost:5001",
                                   platform="linux/amd64")
            .with_ca_certificates("/etc/ssl/certs/ca-certificates.crt")
            .with_apt_packages("git", "jq")
            .with_pip_packages("six", index_url="https://pypi.org/simple",
                               extra_index_urls=["https://example.com/simple"], pre=True,
                               extra_args=["--no-deps"])
            .with_requirements(tree / "requirements.txt")
            .with_commands(["echo hi"])
            .with_env_vars({"A": "1", "B": "two words"})
            .with_workdir("/app")
            .with_dockerignore(tree / ".dockerignore")
            .with_source_folder(tree / "src", dst="/app/src")
            .with_source_file(tree / "app.txt", dst="/app/app.txt"))


def test_to_dict_round_trips_through_json(tree: Path) -> None:
    img = _every_layer(tree)
    data = json.loads(json.dumps(img.to_dict()))
    again = Image.from_dict(data)
    assert again == img
    assert again.spec_hash == img.spec_hash
    assert "print('hi')" not in json.dumps(data)  # contents travel in the context, not the spec


def test_dockerfile_image_round_trips(tree: Path) -> None:
    img = Image.from_dockerfile(tree / "Dockerfile", name="x", build_args={"V": "1"}, tag="t")
    assert Image.from_dict(json.loads(json.dumps(img.to_dict()))) == img


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(extra=1),
        lambda d: d["layers"][0].update(colour="red"),
        lambda d: d["layers"].append({"type": "teleport"}),
        lambda d: d["base"].update(flavour="x"),
        lambda d: d.update(version=99),
        lambda d: d["layers"][1].update(packages="git"),
    ],
)
def test_from_dict_rejects_unknown_or_bad_fields(tree: Path, mutate) -> None:
    data = _every_layer(tree).to_dict()
    mutate(data)
    with pytest.raises(SpecError):
        Image.from_dict(data)


def test_repr_shows_uri_layers_and_dockerfile(tree: Path) -> None:
    img = _every_layer(tree)
    text = repr(img)
    assert img.uri in text and "apt_packages" in text and "FROM python:3.11-slim" in text
    page = img._repr_html_()
    assert img.uri in page and "<details>" in page and "&quot;" not in img.uri


def test_repr_never_raises_when_a_file_vanished(tree: Path) -> None:
    img = Image.from_debian_base(name="x").with_requirements(tree / "requirements.txt")
    (tree / "requirements.txt").unlink()
    assert "unavailable" in repr(img)
    with pytest.raises(SpecError):
        _ = img.uri


def test_with_registry_moves_the_image_but_keeps_its_content_tag():
    image = Image.from_base("localhost:5001/library/busybox:latest",
                            name="team/app").with_commands(["true"])
    moved = image.with_registry("localhost:5002")
    assert moved.uri == f"localhost:5002/team/app:{image.tag}"
    assert moved.spec_hash == image.spec_hash
    assert moved.with_registry(None).uri == image.uri
    with pytest.raises(SpecError, match="registry"):
        image.with_registry("http://not a host")


# -- Flyte's API on our Image: same names, parameters, defaults and meaning -----------------------


def test_source_folder_lands_as_its_own_folder_by_default_like_flyte(tree: Path) -> None:
    img = Image.from_debian_base()
    assert img.with_source_folder(tree / "src").layers[0].dst == "src"  # type: ignore[attr-defined]
    contents = img.with_source_folder(tree / "src", copy_contents_only=True)
    assert contents.layers[0].dst == "."  # type: ignore[attr-defined]
    explicit = img.with_source_folder(tree / "src", dst="/app")
    assert explicit.layers[0].dst == "/app"  # type: ignore[attr-defined]


def test_python_version_takes_flytes_tuple_and_defaults_to_the_running_python() -> None:
    import sys

    assert Image.from_debian_base(python_version=(3, 12)).uri == "python:3.12-slim"
    running = f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"
    assert Image.from_debian_base().uri == running
    with pytest.raises(SpecError) as info:
        Image.from_debian_base(python_version=(3, "x"))  # type: ignore[arg-type]
    assert info.value.argument == "python_version"


def test_flyte_positional_signatures(tree: Path) -> None:
    img = Image.from_debian_base((3, 11), None, False, "localhost:5001", None, "analysis",
                                 ("linux/amd64",))
    assert img.uri.startswith("localhost:5001/analysis:") and img.platform == "linux/amd64"
    docker = Image.from_dockerfile(tree / "Dockerfile", "localhost:5001", "from-file")
    assert docker.uri.startswith("localhost:5001/from-file:")
    assert Image.from_base("localhost:5001/library/busybox:latest").is_default_base


def test_install_flyte_adds_a_pinned_flyte() -> None:
    img = Image.from_debian_base(python_version="3.12", install_flyte=True, flyte_version="2.12.1")
    assert img.layers[0].packages == ("flyte==2.12.1",)  # type: ignore[attr-defined]


def test_platform_tuples_are_a_set_and_part_of_the_tag() -> None:
    two = Image.from_debian_base(name="x", platform=("linux/arm64", "linux/amd64"))
    assert two.platform == "linux/amd64,linux/arm64"
    assert two.platforms == ("linux/amd64", "linux/arm64")
    # The set, not the order or repeats, makes the tag; one platform or two: different tags.
    same = Image.from_debian_base(name="x", platform=("linux/amd64", "linux/arm64", "linux/amd64"))
    assert same.tag == two.tag == Image.from_debian_base(
        name="x", platform="linux/arm64,linux/amd64").tag
    one = Image.from_debian_base(name="x", platform=("linux/amd64",))
    assert one.platform == "linux/amd64" and one.tag != two.tag
    assert one.tag == Image.from_debian_base(name="x", platform="linux/amd64").tag
    assert two.clone(name="y").platforms == two.platforms
    with pytest.raises(SpecError, match="is not a platform") as info:
        Image.from_debian_base(platform=("linux/amd64", "arm64"))
    assert info.value.argument == "platform" and info.value.hint
    with pytest.raises(SpecError, match="names no platform"):
        Image.from_debian_base(platform=())


def test_single_command_string_is_one_command_and_secrets_are_kept() -> None:
    img = Image.from_debian_base().with_commands("echo hi", secret_mounts="GITHUB_PAT")
    layer = img.layers[0]
    assert layer.commands == ("echo hi",)  # type: ignore[attr-defined]
    assert [m.env for m in layer.secrets] == ["GITHUB_PAT"]


def test_source_file_list_copies_each_and_refuses_name_clashes(tree: Path) -> None:
    (tree / "other").mkdir()
    (tree / "other" / "app.txt").write_text("y\n")
    img = Image.from_debian_base().with_source_file([tree / "app.txt", tree / "requirements.txt"],
                                                    dst="/opt/")
    assert [layer.dst for layer in img.layers] == ["/opt/app.txt", "/opt/requirements.txt"]  # type: ignore[attr-defined]
    with pytest.raises(SpecError, match="same name"):
        Image.from_debian_base().with_source_file([tree / "app.txt", tree / "other" / "app.txt"])


def test_requirements_take_installer_options_and_they_count_for_the_tag(tree: Path) -> None:
    plain = Image.from_debian_base(name="x").with_requirements(tree / "requirements.txt")
    indexed = Image.from_debian_base(name="x").with_requirements(
        tree / "requirements.txt", index_url="https://example.com/simple", pre=True,
        extra_args="--no-deps")
    assert indexed.layers[0].extra_args == ("--no-deps",)  # type: ignore[attr-defined]
    assert plain.tag != indexed.tag


def test_clone_changes_registry_name_base_and_adds_a_layer() -> None:
    from imagebuild_nb.spec.layers import Commands

    base = Image.from_base("localhost:5001/library/busybox:latest")
    named = base.clone(name="app", registry="localhost:5001")
    assert named.uri.startswith("localhost:5001/app:") and not named.is_default_base
    rebased = named.clone(base_image="localhost:5001/library/python:3.11-slim",
                          addl_layer=Commands.create(["true"]))
    assert rebased.base.reference == "localhost:5001/library/python:3.11-slim"  # type: ignore[union-attr]
    assert len(rebased.layers) == 1 and rebased.name == "app"
    assert Image.from_debian_base(python_version="3.11").clone(python_version=(3, 12)).uri == \
        "python:3.12-slim"
    with pytest.raises(SpecError, match="layer"):
        named.clone(addl_layer="RUN id")  # type: ignore[arg-type]


def test_new_layers_round_trip_through_json(tree: Path) -> None:
    (tree / "pyproject.toml").write_text("[project]\nname = 'p'\nversion = '0'\n")
    (tree / "uv.lock").write_text("version = 1\n")
    (tree / "poetry.lock").write_text("# lock\n")
    img = (Image.from_debian_base(name="every")
           .with_apt_packages("git", secret_mounts=["/etc/hostname"])
           .with_uv_project(tree / "pyproject.toml", project_install_mode="install_project")
           .with_poetry_project(tree / "pyproject.toml", extra_args="--only main")
           .with_labels({"team": "ml"}))
    again = Image.from_dict(json.loads(json.dumps(img.to_dict())))
    assert again == img and again.spec_hash == img.spec_hash
    assert img.layers[1].uvlock == str(tree / "uv.lock")  # type: ignore[attr-defined]

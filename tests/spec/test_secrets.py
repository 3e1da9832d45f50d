"""Build secrets in the spec: names and sources only; values are found at build time."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagebuild_nb import Image, SpecError
from imagebuild_nb.spec.secrets import SecretMount, resolve, scrub, secret_mounts, secret_values


def test_forms_env_name_file_path_and_flyte_secret(tmp_path: Path) -> None:
    import flyte
    env, file = secret_mounts(["GITHUB_PAT", str(tmp_path / "token")])
    assert (env.kind, env.env, env.target) == ("env", "GITHUB_PAT", None)
    assert (file.kind, file.source, file.target) == ("file", str(tmp_path / "token"),
                                                     "/run/secrets/token")
    (grouped,) = secret_mounts(flyte.Secret(group="aws", key="id", as_env_var="AWS_ACCESS_KEY_ID"))
    assert (grouped.kind, grouped.source, grouped.env) == ("flyte", "aws_id", "AWS_ACCESS_KEY_ID")
    (mounted,) = secret_mounts([flyte.Secret(key="apt-secret", mount="/etc/flyte/secrets")])
    assert (mounted.source, mounted.target) == ("apt-secret", "/etc/flyte/secrets")


def test_flyte_secret_resolves_like_flytes_builder(tmp_path: Path) -> None:
    mount = SecretMount("flyte", "aws_id", env="AWS_ACCESS_KEY_ID")
    assert resolve(mount, {"AWS_ID": "v"}).env == "AWS_ID"  # GROUP_KEY, upper case
    with pytest.raises(SpecError, match="AWS_ID") as info:
        resolve(mount, {})
    assert "/etc/secrets/aws_id" in str(info.value)


@pytest.mark.parametrize("bad", ["has space", "a;b", 3, "", "/"])
def test_bad_secret_names_fail_at_the_call(bad: object) -> None:
    with pytest.raises(SpecError) as info:
        Image.from_debian_base().with_pip_packages("six", secret_mounts=[bad])
    assert info.value.argument == "secret_mounts"


def test_missing_secret_says_how_to_provide_it(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="export NOPE_TOKEN"):
        resolve(SecretMount.parse("NOPE_TOKEN"), {})
    with pytest.raises(SpecError, match="does not exist"):
        resolve(SecretMount.parse(str(tmp_path / "absent")), {})


def test_secret_value_never_changes_the_tag(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first-value")
    img = Image.from_debian_base(name="x").with_commands(["true"], secret_mounts=[str(path)])
    before = img.tag
    path.write_text("second-value")
    assert img.tag == before
    assert "first-value" not in str(img.to_dict()) and "second" not in str(img.to_dict())


def test_values_are_scrubbed_from_text(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("s3cr3t-value\n")
    resolved = [resolve(SecretMount.parse(str(path))), resolve(SecretMount.parse("TOK"),
                                                               {"TOK": "env-s3cret"})]
    values = secret_values(resolved, {"TOK": "env-s3cret"})
    assert scrub("got s3cr3t-value and env-s3cret", values) == "got *** and ***"

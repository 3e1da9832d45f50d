"""Content identity: type-tagged, order-sensitive, content-addressed, machine-independent."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagebuild_nb import Image
from imagebuild_nb.spec import files

# Valid for apt and pip alike, so the same text can go into different layer types.
APT_NAME = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=2, max_size=10)
COMMAND = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
                  min_size=1, max_size=30).filter(
    lambda c: c.strip() and not c.lstrip().startswith("-"))  # a leading '-' is a RUN flag


def base() -> Image:
    return Image.from_debian_base(python_version="3.11", name="x")


@given(st.lists(APT_NAME, min_size=2, max_size=5, unique=True))
def test_package_order_counts(packages: list[str]) -> None:
    assert base().with_apt_packages(*packages).tag != base().with_apt_packages(
        *reversed(packages)).tag


@given(APT_NAME, APT_NAME)
def test_no_concatenation_collisions(a: str, b: str) -> None:
    # ("ab", "c") must differ from ("a", "bc"): items are JSON strings, not joined text.
    joined = a + b + "zz"
    left = base().with_apt_packages(joined[:2], joined[2:])
    right = base().with_apt_packages(joined[:3], joined[3:])
    assert left.tag != right.tag


def test_ab_c_is_not_a_bc() -> None:
    assert base().with_pip_packages("ab", "c").tag != base().with_pip_packages("a", "bc").tag
    assert base().with_commands(["ab", "c"]).tag != base().with_commands(["a", "bc"]).tag


@given(APT_NAME)
def test_layer_type_counts(name: str) -> None:
    tags = {
        base().with_apt_packages(name).tag,
        base().with_commands([name]).tag,
        base().with_pip_packages(name).tag,
    }
    assert len(tags) == 3


@given(st.lists(COMMAND, min_size=1, max_size=3), st.lists(COMMAND, min_size=1, max_size=3))
def test_layer_order_counts(first: list[str], second: list[str]) -> None:
    if first != second:
        a = base().with_commands(first).with_commands(second)
        b = base().with_commands(second).with_commands(first)
        assert a.tag != b.tag


@given(st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,6}", fullmatch=True),
                       st.text(st.characters(blacklist_characters="\n\r\0",
                                             blacklist_categories=("Cs",)), max_size=20),
                       min_size=1, max_size=4))
def test_same_spec_same_tag_and_value_changes_count(env: dict[str, str]) -> None:
    assert base().with_env_vars(env).tag == base().with_env_vars(dict(env)).tag
    changed = {k: v + "!" for k, v in env.items()}
    assert base().with_env_vars(env).tag != base().with_env_vars(changed).tag


def test_registry_name_and_explicit_tag_do_not_count() -> None:
    a = Image.from_debian_base(name="a", registry="localhost:5001").with_apt_packages("git")
    b = Image.from_debian_base(name="b", registry="ghcr.io/org", tag="v1").with_apt_packages("git")
    assert a.spec_hash == b.spec_hash


def test_base_counts() -> None:
    assert (Image.from_debian_base("3.11", name="x").with_apt_packages("git").tag
            != Image.from_debian_base("3.12", name="x").with_apt_packages("git").tag)
    assert (Image.from_base("busybox:1", name="x").with_apt_packages("git").tag
            != Image.from_base("busybox:2", name="x").with_apt_packages("git").tag)


# -- files ------------------------------------------------------------------------------------

def make_tree(root: Path) -> Path:
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "mod.py").write_text("x = 1\n")
    (root / "src" / "README.md").write_text("readme\n")
    (root / "requirements.txt").write_text("six\n")
    (root / "ignore").write_text("*.md\n")
    return root


def folder_image(root: Path) -> Image:
    return base().with_source_folder(root / "src", dst="/app")


def test_file_edit_changes_tag_in_the_same_process(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    img = folder_image(root)
    before = img.tag
    assert img.tag == before
    (root / "src" / "pkg" / "mod.py").write_text("x = 2\n")  # same size, same tick likely
    assert img.tag != before
    req = base().with_requirements(root / "requirements.txt")
    old = req.tag
    (root / "requirements.txt").write_text("abc\n")
    assert req.tag != old


def test_new_file_and_rename_and_mode_change_count(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    img = folder_image(root)
    tags = [img.tag]
    (root / "src" / "new.txt").write_text("")
    tags.append(img.tag)
    (root / "src" / "new.txt").rename(root / "src" / "renamed.txt")
    tags.append(img.tag)
    os.chmod(root / "src" / "renamed.txt", 0o755)
    tags.append(img.tag)
    (root / "src" / "empty").mkdir()
    tags.append(img.tag)
    assert len(set(tags)) == len(tags)


def test_junk_does_not_count(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    img = folder_image(root)
    before = img.tag
    for junk in (".git/objects/ab", "pkg/__pycache__", ".ipynb_checkpoints", ".venv/bin",
                 "pkg/.git"):
        (root / "src" / junk).mkdir(parents=True)
        (root / "src" / junk / "f").write_text("junk")
    (root / "src" / "pkg" / "mod.cpython-311.pyc").write_bytes(b"\0junk")
    assert img.tag == before
    assert not any("__pycache__" in e.path for e in img.build_context().entries)


def test_dockerignore_rules_count(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    plain = folder_image(root)
    ignoring = base().with_dockerignore(root / "ignore").with_source_folder(root / "src", "/app")
    assert plain.tag != ignoring.tag
    paths = [e.path for e in ignoring.build_context().entries]
    assert not any(p.endswith("README.md") for p in paths)
    before = ignoring.tag
    (root / "src" / "README.md").write_text("edited, but ignored\n")
    assert ignoring.tag == before
    (root / "ignore").write_text("*.md\n!README.md\n")
    assert ignoring.tag != before


def test_own_dockerignore_of_a_folder_applies(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    (root / "src" / ".dockerignore").write_text("pkg\n")
    img = folder_image(root)
    before = img.tag
    (root / "src" / "pkg" / "mod.py").write_text("changed, ignored\n")
    assert img.tag == before


def test_same_tag_from_two_working_dirs_and_a_copy(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_tree(tmp_path / "one")
    monkeypatch.chdir(root)
    from_root = base().with_source_folder("src", "/app").with_requirements("requirements.txt")
    monkeypatch.chdir(root / "src")
    from_src = base().with_source_folder(".", "/app").with_requirements("../requirements.txt")
    copy = tmp_path / "elsewhere" / "deeper"
    shutil.copytree(root, copy)  # new inodes, new mtimes, new absolute paths
    monkeypatch.chdir(copy)
    from_copy = base().with_source_folder("src", "/app").with_requirements("requirements.txt")
    assert from_root.tag == from_src.tag == from_copy.tag


def test_dockerfile_tag_covers_context_and_build_args(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nCOPY data.txt /\n")
    (tmp_path / "data.txt").write_text("one\n")
    img = Image.from_dockerfile(tmp_path / "Dockerfile", name="x")
    before = img.tag
    (tmp_path / "data.txt").write_text("two\n")
    after = img.tag
    assert after != before
    assert Image.from_dockerfile(tmp_path / "Dockerfile", name="x",
                                 build_args={"A": "1"}).tag != after
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.pyc").write_text("junk")
    assert img.tag == after
    (tmp_path / "Dockerfile").write_text("FROM busybox\nCOPY data.txt /d\n")
    assert img.tag != after


# -- the digest cache -------------------------------------------------------------------------

def test_cache_hit_for_an_old_unchanged_file(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("aaaa")
    old = 1_000_000_000 * 1_600_000_000
    os.utime(path, ns=(old, old))
    first = files.file_digest(path)
    st = os.stat(path)
    assert files._cache[files._key(str(path), st)] == first  # cached: the file is old


def test_same_size_edit_with_restored_mtime_is_seen(tmp_path: Path) -> None:
    # The stat key includes ctime, which os.utime cannot restore: the edit changes the key.
    path = tmp_path / "f.txt"
    path.write_text("aaaa")
    old = 1_000_000_000 * 1_600_000_000
    os.utime(path, ns=(old, old))
    first = files.file_digest(path)
    with open(path, "r+b") as handle:  # in place: same inode, same size
        handle.write(b"bbbb")
    os.utime(path, ns=(old, old))
    assert files.file_digest(path) != first


def test_recent_files_are_never_cached(tmp_path: Path) -> None:
    # Racy case: an edit within one mtime tick keeps (size, mtime, ctime, inode). Digests of
    # files modified in the last RACY_WINDOW_NS are therefore not cached at all: re-read.
    path = tmp_path / "f.txt"
    path.write_text("aaaa")
    first = files.file_digest(path)
    st_before = os.stat(path)
    assert files._key(str(path), st_before) not in files._cache
    with open(path, "r+b") as handle:
        handle.write(b"bbbb")
    os.utime(path, ns=(st_before.st_atime_ns, st_before.st_mtime_ns))
    assert files.file_digest(path) != first


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture],
          deadline=None)
@given(st.binary(min_size=1, max_size=64), st.binary(min_size=1, max_size=64))
def test_any_content_change_changes_tag(tmp_path: Path, one: bytes, two: bytes) -> None:
    folder = tmp_path / "prop"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / "blob").write_bytes(one)
    img = base().with_source_folder(folder, "/data")
    first = img.tag
    (folder / "blob").write_bytes(two)
    assert (img.tag == first) == (one == two)


def test_threaded_hashing_of_large_files_gives_the_serial_digests(tmp_path, monkeypatch):
    from imagebuild_nb.spec import files

    for i in range(80):
        (tmp_path / f"f{i}.bin").write_bytes(bytes([i]) * (1000 + i))
    rules = files.folder_rules(tmp_path)
    files.clear_cache()
    serial = files.walk_tree(tmp_path, rules)
    monkeypatch.setattr(files, "_PARALLEL_MIN_AVERAGE", 0)  # as if every file were large
    files.clear_cache()
    threaded = files.walk_tree(tmp_path, rules)
    assert threaded == serial
    assert files.tree_digest(threaded) == files.tree_digest(serial)


def test_a_link_is_hashed_as_a_link_as_it_is_sent(tmp_path: Path) -> None:
    """The tag covers a link's target string, not the bytes behind it, as the context sends
    the link itself: retargeting it changes the tag, and a copy of the file is not the link."""
    root = make_tree(tmp_path)
    src = root / "src"
    (src / "data.txt").write_text("one\n")
    (src / "other.txt").write_text("one\n")
    (src / "link").symlink_to("data.txt")
    img = folder_image(root)
    first = img.tag
    entry = next(e for e in img.build_context().entries if e.path.endswith("/link"))
    assert (entry.kind, entry.linkname) == ("symlink", "data.txt")
    (src / "link").unlink()
    (src / "link").symlink_to("other.txt")  # same bytes behind it, another link
    assert img.tag != first
    (src / "link").unlink()
    shutil.copyfile(src / "data.txt", src / "link")  # a file with the link's bytes
    assert img.tag != first
    (src / "link").unlink()
    (src / "link").symlink_to("data.txt")
    assert img.tag == first

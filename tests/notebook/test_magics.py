"""%imagebuild in an InteractiveShell: grammar, usage errors, help, settings through %config."""

from __future__ import annotations

import uuid

import pytest
from IPython.core.error import UsageError
from IPython.testing.globalipapp import start_ipython

from imagebuild_nb.notebook.magics import ImageBuildMagics
from tests.support.services import Registry


@pytest.fixture(scope="module")
def shell():
    ip = start_ipython()
    ip.extension_manager.load_extension("imagebuild_nb")
    yield ip


def magics(shell) -> ImageBuildMagics:
    return next(c for c in shell.configurables if isinstance(c, ImageBuildMagics))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "a command is needed"),
        ("frobnicate img", "invalid choice: 'frobnicate'"),
        ("exists", "required: IMAGE"),
        ("build img --builder cloud", "invalid choice: 'cloud'"),
        ("build img --unknown-flag", "unrecognized arguments: --unknown-flag"),
        ("exists 'unterminated", "cannot parse the arguments"),
        ("exists no_such_variable", "no variable named 'no_such_variable'"),
        ("status 1234", "no build '1234'"),
        ("biuld img", "did you mean 'build'"),
        ("build img --frce", "did you mean '--force' for '--frce'"),
        ("logs --folow", "did you mean '--follow'"),
    ],
)
def test_bad_arguments_give_a_short_usage_error(shell, line, message):
    with pytest.raises(UsageError, match=message):
        shell.run_line_magic("imagebuild", line)


def test_build_commands_without_a_build_need_one_first(shell):
    magics(shell).last_build = None
    for command in ("status", "logs", "cancel"):
        with pytest.raises(UsageError, match="no build yet in this kernel"):
            shell.run_line_magic("imagebuild", command)


def test_a_variable_that_is_not_an_image_is_named_in_the_error(shell):
    shell.user_ns["not_an_image"] = 42
    with pytest.raises(UsageError,
                       match=r"'not_an_image' is a builtins\.int, not an imagebuild_nb"):
        shell.run_line_magic("imagebuild", "exists not_an_image")


def test_building_a_plain_reference_asks_for_a_spec(shell):
    with pytest.raises(UsageError, match="building needs an Image spec"):
        shell.run_line_magic("imagebuild", "build localhost:5001/team/app:1")


@pytest.mark.registry
def test_exists_takes_a_plain_reference(shell, plain_registry: Registry, busybox_base: str):
    """What the help offers: ``exists`` on a full reference, no spec needed."""
    assert shell.run_line_magic("imagebuild", f"exists {busybox_base}").state == "exists"
    never = f"{plain_registry.host}/test/never-pushed-{uuid.uuid4().hex[:8]}:1"
    assert shell.run_line_magic("imagebuild", f"exists {never}").state == "missing"


def test_cell_magic_needs_a_name_and_a_body(shell):
    with pytest.raises(UsageError, match="required: --name"):
        shell.run_cell_magic("imagebuild", "build", "FROM busybox\n")
    with pytest.raises(UsageError, match="cell body is empty"):
        shell.run_cell_magic("imagebuild", "build --name demo", "  \n")


def test_help_documents_every_subcommand(shell):
    doc = shell.find_line_magic("imagebuild").__doc__
    for word in ("exists IMAGE", "build IMAGE", "--builder local|remote", "--dry-run", "--force",
                 "--no-wait", "widget IMAGE", "status [BUILD]", "logs [BUILD] [--follow]",
                 "cancel [BUILD]", "%%imagebuild build --name NAME", "%%imagebuild exists",
                 "%config ImageBuildMagics"):
        assert word in doc


def test_config_magic_sets_settings_on_top_of_the_engine_configuration(shell, monkeypatch):
    from imagebuild_nb.engine import ImageBuildEngine

    monkeypatch.setattr(ImageBuildEngine, "_default", None)  # this test's own default engine
    ImageBuildEngine.configure(registry="localhost:5001", remote_url="http://127.0.0.1:8890")
    shell.run_line_magic("config", "ImageBuildMagics.network_mode = 'host'")
    shell.run_line_magic(
        "config", "ImageBuildMagics.extra_ca_files = ['/etc/ssl/certs/ca-certificates.crt']")
    settings = magics(shell).settings()
    assert settings.network_mode == "host"
    assert settings.registry == "localhost:5001"  # from ImageBuildEngine.configure, kept
    assert settings.remote_url == "http://127.0.0.1:8890"
    assert settings.extra_ca_files == ("/etc/ssl/certs/ca-certificates.crt",)
    ImageBuildEngine.default().close()


def test_config_rejects_invalid_values(shell):
    from traitlets import TraitError

    with pytest.raises(TraitError):
        magics(shell).unknown_existence_policy = "assume-exists"


def test_reload_keeps_one_configurable(shell):
    shell.run_line_magic("reload_ext", "imagebuild_nb")
    assert sum(isinstance(c, ImageBuildMagics) for c in shell.configurables) == 1


def test_widget_subcommand_opens_the_widget_for_an_image(shell):
    from imagebuild_nb import Image, ImageBuildWidget

    shell.user_ns["img"] = Image.from_base("localhost:5001/library/busybox:latest",
                                           name="demo").with_commands(["true"])
    widget = shell.run_line_magic("imagebuild", "widget img")
    try:
        assert isinstance(widget, ImageBuildWidget)
        assert widget.uri == shell.user_ns["img"].uri
    finally:
        widget.close()


def test_a_dockerfile_cell_leaves_no_scratch_folder(shell, tmp_path, monkeypatch):
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    plan = shell.run_cell_magic("imagebuild", "build --name demo/cell --dry-run",
                                "FROM localhost:5001/library/busybox:latest\nRUN true\n")
    assert "RUN true" in plan.dockerfile
    with pytest.raises(UsageError):  # a bad name fails after the folder was made
        shell.run_cell_magic("imagebuild", "build --name 'Not A Name'", "FROM busybox\n")
    assert list(scratch.iterdir()) == []

"""The ``with_*`` methods of :class:`~imagebuild_nb.spec.image.Image` that add layers.

Each method checks its arguments into one layer of :mod:`imagebuild_nb.spec.layers` (or, for a
list of files, one per file) and hands it to ``Image._add``, which returns the new Image.
:class:`LayerMethods` is a mixin of ``Image`` and holds no state of its own: the spec's fields,
constructors and identity stay in :mod:`imagebuild_nb.spec.image`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, cast

from imagebuild_nb.errors import SpecError
from imagebuild_nb.spec import layers as L

if TYPE_CHECKING:
    from imagebuild_nb.spec.image import Image


class LayerMethods:
    """Mixin: every method returns a new Image with one more layer (or several)."""

    if TYPE_CHECKING:
        # Image (a frozen dataclass) provides it: one more layer, refused for a Dockerfile image.
        def _add(self, layer: L.Layer) -> Image: ...

    def with_apt_packages(self, *packages: str, secret_mounts: object = None) -> Image:
        """``apt-get install`` the packages (lists cleaned): ``.with_apt_packages("git", "jq")``.

        ``secret_mounts``: secrets its RUN step reads (see :mod:`imagebuild_nb.spec.secrets`).
        """
        return self._add(L.AptPackages.create(packages, secret_mounts))

    def with_pip_packages(self, *packages: str, index_url: str | None = None,
                          extra_index_urls: Sequence[str] | str | None = (), pre: bool = False,
                          extra_args: Sequence[str] | str | None = (),
                          secret_mounts: object = None) -> Image:
        """Install into the image's virtual environment (/opt/venv, on PATH) with uv (or pip).

        >>> from imagebuild_nb import Image
        >>> _ = Image.from_debian_base().with_pip_packages("pandas==2.2.3", pre=True)
        """
        return self._add(L.PipPackages.create(packages, index_url, extra_index_urls, pre,
                                              extra_args, secret_mounts))

    def with_requirements(self, file: str | os.PathLike[str], index_url: str | None = None,
                          extra_index_urls: Sequence[str] | str | None = None,
                          pre: bool = False, extra_args: Sequence[str] | str | None = None,
                          secret_mounts: object = None) -> Image:
        """Install a requirements file (its content counts for the tag)."""
        return self._add(L.Requirements.create(file, index_url, extra_index_urls, pre,
                                               extra_args, secret_mounts))

    def with_commands(self, commands: Sequence[str] | str, secret_mounts: object = None) -> Image:
        """One ``RUN`` per shell command, in order: ``.with_commands(["make", "make test"])``.

        A single string is one command (Flyte's meaning).
        """
        return self._add(L.Commands.create(commands, secret_mounts))

    def with_env_vars(self, env_vars: Mapping[str, str]) -> Image:
        """Set environment variables, as a Dockerfile ``ENV`` line would.

        ``$NAME`` and ``${NAME}`` expand from the base image and earlier layers
        (``{"PATH": "/opt/tools/bin:$PATH"}``), ``\\$`` keeps a literal dollar, and ``$(...)`` or
        backticks stay plain text (ENV runs no shell).
        """
        return self._add(L.EnvVars.create(env_vars))

    def with_workdir(self, workdir: str) -> Image:
        """Set the working directory (an absolute path) for later steps and at runtime."""
        return self._add(L.Workdir.create(workdir))

    def with_source_folder(self, src: str | os.PathLike[str], dst: str = ".",
                           copy_contents_only: bool = False) -> Image:
        """Copy a folder into the image, as Flyte does: ``src`` lands as ``./<name of src>``.

        With ``dst`` (or ``copy_contents_only=True``) its contents go to ``dst`` instead;
        relative paths are relative to the workdir. Junk (.git, __pycache__, *.pyc,
        .ipynb_checkpoints, .venv) is skipped; the folder's own .dockerignore and rules from
        :meth:`with_dockerignore` apply.
        """
        if not isinstance(copy_contents_only, bool):
            raise SpecError("copy_contents_only must be True or False",
                            argument="copy_contents_only")
        if not copy_contents_only and dst == "." and isinstance(src, (str, os.PathLike)):
            name = os.path.basename(os.path.abspath(os.fspath(src)))
            dst = f"./{name}" if name else dst
        return self._add(L.SourceFolder.create(src, dst))

    def with_source_file(self, src: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                         dst: str = ".") -> Image:
        """Copy a file (or each file of a list); a ``dst`` ending in '/' (or '.') keeps names."""
        if isinstance(src, (list, tuple)):
            names = [os.path.basename(os.fspath(path)) for path in src]
            twice = sorted({name for name in names if names.count(name) > 1})
            if twice:
                raise SpecError(f"src: files with the same name would overwrite each other at "
                                f"{dst!r}: {twice}", argument="src",
                                hint="copy them in separate calls with different dst")
            image = cast("Image", self)  # the mixin is only ever an Image
            for path in src:
                image = image._add(L.SourceFile.create(path, dst))
            return image
        # Other sequences are not narrowed away by the list/tuple test; create rejects them.
        return self._add(L.SourceFile.create(src, dst))  # type: ignore[arg-type]

    def with_dockerignore(self, path: str | os.PathLike[str]) -> Image:
        """Apply a .dockerignore file's rules to every source folder of this image."""
        return self._add(L.DockerIgnore.create(path))

    def with_uv_project(self, pyproject_file: str | os.PathLike[str],
                        uvlock: str | os.PathLike[str] | None = None,
                        index_url: str | None = None,
                        extra_index_urls: Sequence[str] | str | None = None, pre: bool = False,
                        extra_args: Sequence[str] | str | None = None,
                        secret_mounts: object = None,
                        project_install_mode: str = "dependencies_only") -> Image:
        """``uv sync`` a project's dependencies into /opt/venv (uv.lock beside it by default).

        ``project_install_mode="install_project"`` copies the whole project and installs it too.
        """
        from imagebuild_nb.spec.projects import UVProject

        return self._add(UVProject.create(pyproject_file, uvlock, index_url, extra_index_urls,
                                          pre, extra_args, secret_mounts, project_install_mode))

    def with_poetry_project(self, pyproject_file: str | os.PathLike[str],
                            poetry_lock: str | os.PathLike[str] | None = None,
                            extra_args: Sequence[str] | str | None = None,
                            secret_mounts: object = None,
                            project_install_mode: str = "dependencies_only") -> Image:
        """``poetry install`` a project into /opt/venv (poetry.lock beside it by default)."""
        from imagebuild_nb.spec.projects import PoetryProject

        return self._add(PoetryProject.create(pyproject_file, poetry_lock, extra_args,
                                              secret_mounts, project_install_mode))

    def with_labels(self, labels: Mapping[str, str]) -> Image:
        """Add labels to the image config: ``.with_labels({"team": "ml"})``."""
        return self._add(L.Labels.create(labels))

    def with_ca_certificates(self, *paths: str | os.PathLike[str]) -> Image:
        """Trust extra CA certificates (PEM) in later RUN steps and at runtime.

        Put it first when a TLS-inspecting proxy sits between the build and PyPI/Debian:
        ``.with_ca_certificates("/etc/ssl/certs/ca-certificates.crt")``.
        """
        return self._add(L.CACertificates.create(paths))

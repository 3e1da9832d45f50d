"""Dockerfile lines for installs (uv or pip, uv and Poetry projects), secrets, env and labels.

uv comes from PyPI into a build stage of its own (``FROM <base> AS imagebuild-nb-uv``), which
BuildKit and the legacy builder cache across builds: only the first build on a machine
downloads it. With BuildKit the main stage bind-mounts it for the install steps, so the image
carries no uv; the legacy form copies the binary in. Poetry is installed the same way into
its own stage. Packages land in the image's virtual environment (/opt/venv) either way.

A secret reaches only the RUN step of its layer: ``--mount=type=secret`` puts it in a file for
that step; one seen as a variable is read from that file by the step's own shell.

>>> print(env_value("/opt/tools/bin:$PATH"))
"/opt/tools/bin:$PATH"
>>> print(env_value("cost \\\\$5 $(id) `id`"))
"cost \\$5 \\$(id) `id`"
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from imagebuild_nb.render.quoting import dockerfile_string, json_array, run_instruction, sh
from imagebuild_nb.spec.secrets import SecretMount

Installer = Literal["uv", "pip"]
UV_VERSION = "0.13.9"
POETRY_VERSION = "2.2.1"
TOOLS = "/opt/imagebuild-nb"
UV_STAGE, POETRY_STAGE = "imagebuild-nb-uv", "imagebuild-nb-poetry"
UV_HOME, POETRY_HOME = f"{TOOLS}/uv", f"{TOOLS}/poetry"
UV = f"{UV_HOME}/bin/uv"
POETRY = f"{POETRY_HOME}/bin/poetry"
PROJECTS = f"{TOOLS}/projects"
VENV = "/opt/venv"
UV_CACHE = "/var/cache/imagebuild-nb/uv"
PIP_CACHE = "/var/cache/imagebuild-nb/pip"
POETRY_CACHE = "/var/cache/imagebuild-nb/poetry"
STAGE_CA = "/tmp/imagebuild-nb-ca"
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
_UV_ENV = f"UV_CACHE_DIR={UV_CACHE} UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1"
_PIP_ENV = "PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore"
# $NAME, ${NAME}, ${NAME:-word}, ${NAME:+word}: what a Dockerfile ENV line expands.
_VARIABLE = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*"
                       r"(?::[-+][^${}\"\\`]*)?\})")


def env_value(value: str) -> str:
    """A double-quoted ENV value where variables expand and nothing else does.

    ``\\$`` is a literal dollar; a ``$`` not starting a variable (``$(id)``, ``$1``, ``$``)
    stays literal too; backticks are plain characters in a Dockerfile.
    """
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and value.startswith("\\$", i):
            out.append("\\$")
            i += 2
        elif ch == "$":
            match = _VARIABLE.match(value, i)
            if match:
                out.append(match.group(0))
                i = match.end()
            else:
                out.append("\\$")
                i += 1
        elif ch in '"\\':
            out.append("\\" + ch)
            i += 1
        else:
            out.append(ch)
            i += 1
    return '"' + "".join(out) + '"'


def env_line(pairs: Sequence[tuple[str, str]]) -> str:
    return "ENV " + " \\\n    ".join(f"{key}={env_value(value)}" for key, value in pairs)


def labels_line(pairs: Sequence[tuple[str, str]]) -> str:
    return "LABEL " + " ".join(f"{dockerfile_string(k)}={dockerfile_string(v)}" for k, v in pairs)


# -- secrets ---------------------------------------------------------------------------------------

def secret_mounts(mounts: Sequence[SecretMount]) -> list[str]:
    return [f"--mount=type=secret,id={m.id},target={m.mount_path}" for m in mounts]


def with_secrets(command: str, mounts: Sequence[SecretMount]) -> str:
    """``command`` preceded by shell lines that read env-exposed secrets from their mounts."""
    reads = [f'{m.env}="$(cat {m.mount_path})"; export {m.env}' for m in mounts if m.env]
    return "\n".join([*reads, command]) if reads else command


def run(command: str, mounts: Sequence[str], secrets: Sequence[SecretMount] = ()) -> str:
    return run_instruction(with_secrets(command, secrets),
                           " ".join([*mounts, *secret_mounts(secrets)]))


# -- tool stages -----------------------------------------------------------------------------------

def tool_stages(base_image: str, *, poetry: bool, installer: Installer, buildkit: bool,
                ca_dirs: Sequence[str]) -> list[str]:
    """The stages that fetch uv (and Poetry) from PyPI, trusting the build's extra CAs."""
    lines = [f"FROM {base_image} AS {UV_STAGE}"]
    trust = ""
    if ca_dirs:
        for index, folder in enumerate(ca_dirs):
            lines.append(f"COPY {json_array([folder + '/', f'{STAGE_CA}/{index}/'])}")
        trust = (f"cat $(ls {SYSTEM_BUNDLE} 2>/dev/null) {STAGE_CA}/*/*.crt > {STAGE_CA}.pem && "
                 f"export PIP_CERT={STAGE_CA}.pem SSL_CERT_FILE={STAGE_CA}.pem && ")
    cache = f"--mount=type=cache,target={PIP_CACHE},sharing=locked " if buildkit else ""
    pip_cache = f"PIP_CACHE_DIR={PIP_CACHE}" if buildkit else "PIP_NO_CACHE_DIR=1"
    lines.append(f"RUN {cache}{trust}python3 -m venv {UV_HOME} && {_PIP_ENV} {pip_cache} "
                 f"{UV_HOME}/bin/pip install uv=={UV_VERSION}")
    if poetry:
        lines += [f"FROM {UV_STAGE} AS {POETRY_STAGE}",
                  f"RUN {trust}{UV} venv {POETRY_HOME} && {_UV_ENV} UV_NO_CACHE=1 "
                  f"{UV} pip install --python {POETRY_HOME}/bin/python poetry=={POETRY_VERSION}"]
    return lines


def tool_copies(*, poetry: bool, buildkit: bool) -> list[str]:
    """Legacy builder: no bind mounts from stages, so the tools are copied into the image."""
    if buildkit:
        return []
    lines = [f"COPY --from={UV_STAGE} {UV_HOME} {UV_HOME}"]
    if poetry:
        lines.append(f"COPY --from={POETRY_STAGE} {POETRY_HOME} {POETRY_HOME}")
    return lines


def _uv_mounts(buildkit: bool) -> list[str]:
    if not buildkit:
        return []
    return [f"--mount=type=cache,target={UV_CACHE},sharing=locked",
            f"--mount=type=bind,from={UV_STAGE},source={UV_HOME},target={UV_HOME}"]


# -- installs --------------------------------------------------------------------------------------

def pip_options(index_url: str | None, extra_index_urls: Sequence[str], pre: bool,
                extra_args: Sequence[str], installer: Installer) -> list[str]:
    options: list[str] = []
    if index_url:
        options += ["--index-url", index_url]
    for url in extra_index_urls:
        options += ["--extra-index-url", url]
    if pre:
        options += ["--prerelease", "allow"] if installer == "uv" else ["--pre"]
    return options + list(extra_args)


def install(arguments: Sequence[str], *, installer: Installer, buildkit: bool,
            secrets: Sequence[SecretMount] = ()) -> str:
    """Install into /opt/venv: ``uv pip install`` (default) or ``pip install``."""
    if installer == "uv":
        cache = "" if buildkit else "UV_NO_CACHE=1 "
        command = (f"{_UV_ENV} {cache}{UV} pip install --python {VENV}/bin/python "
                   f"{sh(arguments)}")
        return run(command, _uv_mounts(buildkit), secrets)
    if buildkit:
        command = f"{_PIP_ENV} PIP_CACHE_DIR={PIP_CACHE} {VENV}/bin/python -m pip install " \
                  f"{sh(arguments)}"
        return run(command, [f"--mount=type=cache,target={PIP_CACHE}"], secrets)
    return run(f"{_PIP_ENV} {VENV}/bin/python -m pip install --no-cache-dir {sh(arguments)}", [],
               secrets)


def uv_project(context_dir: str, index: int, *, options: Sequence[str], install_project: bool,
               buildkit: bool, secrets: Sequence[SecretMount]) -> list[str]:
    target = f"{PROJECTS}/{index}"
    flags = ["--no-editable"] if install_project else ["--no-install-project"]
    cache = "" if buildkit else "UV_NO_CACHE=1 "
    command = (f"cd {target} && VIRTUAL_ENV={VENV} {_UV_ENV} {cache}{UV} sync --active "
               f"--inexact {sh([*flags, *options])}")
    return [f"COPY {json_array([context_dir + '/', target + '/'])}",
            run(command, _uv_mounts(buildkit), secrets)]


def poetry_project(context_dir: str, index: int, *, extra_args: Sequence[str],
                   install_project: bool, buildkit: bool,
                   secrets: Sequence[SecretMount]) -> list[str]:
    target = f"{PROJECTS}/{index}"
    flags = ["--no-interaction", *([] if install_project else ["--no-root"])]
    mounts = [f"--mount=type=cache,target={POETRY_CACHE},sharing=locked",
              f"--mount=type=bind,from={POETRY_STAGE},source={POETRY_HOME},"
              f"target={POETRY_HOME}"] if buildkit else []
    cache = f"POETRY_CACHE_DIR={POETRY_CACHE}" if buildkit else "POETRY_NO_CACHE=1"
    command = (f"cd {target} && VIRTUAL_ENV={VENV} {cache} POETRY_VIRTUALENVS_CREATE=false "
               f"{POETRY} install {sh([*flags, *extra_args])}")
    return [f"COPY {json_array([context_dir + '/', target + '/'])}", run(command, mounts, secrets)]

"""Which distributions a frozen image gets.

The roots are what the user installed (distributions installed by name, or that nothing
else requires) minus the tooling the image does not need (the kernel, Jupyter, this project,
the installers); the result is the roots and their requirements, followed through extras.
Tooling's own dependencies drop out unless a kept distribution needs them, and a tooling
distribution a kept one requires stays. ``only_imported`` starts from the distributions that
provide the imported modules instead.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from packaging.utils import canonicalize_name

from imagebuild_nb.freeze.environment import Environment

# Canonical names; a name starting with "jupyter" counts too.
TOOLING = frozenset({
    "imagebuild-nb", "ipykernel", "ipywidgets", "widgetsnbextension", "notebook", "nbclassic",
    "nbclient", "nbconvert", "nbformat", "voila", "pip", "setuptools", "wheel", "uv",
    "debugpy",
})


def is_tooling(name: str) -> bool:
    name = canonicalize_name(name)
    return name in TOOLING or name.startswith("jupyter")


def roots(env: Environment, *, include_tooling: bool = False) -> set[str]:
    """What the user installed: requested by name, or required by nothing installed."""
    required: set[str] = set()
    for dist in env.distributions.values():
        required.update(canonicalize_name(req.name) for req in dist.requirements())
    chosen = {name for name, dist in env.distributions.items()
              if dist.requested or name not in required}
    if not include_tooling:
        chosen = {name for name in chosen if not is_tooling(name)}
    return chosen


def closure(env: Environment, start: Iterable[str]) -> set[str]:
    """``start`` and everything installed it requires (extras followed; missing ones skipped)."""
    extras: dict[str, set[str]] = {canonicalize_name(name): set() for name in start}
    todo = [name for name in extras if name in env.distributions]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name = todo.pop()
        key = (name, frozenset(extras[name]))
        if key in seen:
            continue
        seen.add(key)
        for req in env.distributions[name].requirements(extras[name]):
            child = canonicalize_name(req.name)
            if child not in env.distributions:
                continue  # an unmet requirement in the environment: pip check's business
            known = extras.setdefault(child, set())
            if child not in {n for n, _ in seen} or not set(req.extras) <= known:
                known.update(req.extras)
                todo.append(child)
    return {name for name in extras if name in env.distributions}


def imported_top_level(modules: Iterable[str] | None = None) -> set[str]:
    """Top-level names of imported modules (default: this process's ``sys.modules``), without
    the standard library and private names."""
    names = {name.split(".", 1)[0] for name in (sys.modules if modules is None else modules)}
    stdlib: frozenset[str] = getattr(sys, "stdlib_module_names", frozenset())
    return {name for name in names
            if name and not name.startswith("_") and name not in stdlib
            and name not in sys.builtin_module_names and name != "__main__"}


def select(env: Environment, *, only_imported: bool = False,
           modules: Iterable[str] | None = None, include_tooling: bool = False,
           exclude: Iterable[str] = (), include: Iterable[str] = ()) -> set[str]:
    """Canonical names of the distributions to freeze (``include``: more roots by name)."""
    unknown = sorted(name for name in include if canonicalize_name(name) not in env.distributions)
    if unknown:
        from imagebuild_nb.errors import FreezeError

        raise FreezeError(f"include: {unknown} are not installed here", distributions=unknown,
                          argument="include", hint="name installed distributions (pip list)")
    full = closure(env, roots(env, include_tooling=include_tooling) | set(include))
    if only_imported:
        wanted = imported_top_level(modules)
        providers = {dist.name for dist in env.distributions.values()
                     if wanted.intersection(dist.modules)}
        full = closure(env, providers & full) if not include_tooling else closure(env, providers)
        full |= closure(env, include)
    dropped = {canonicalize_name(name) for name in exclude}
    return full - dropped


def left_out_imported(env: Environment, chosen: set[str],
                      modules: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Distributions left out of a freeze that provide imported modules (distribution ->
    modules): the kernel's own (tornado, zmq) and any the user's code may rely on that only
    came as a dependency of the tooling. Named, so nothing is dropped silently."""
    left: dict[str, list[str]] = {}
    for module in sorted(imported_top_level(modules)):
        for dist in env.providers(module):
            if dist.name not in chosen:
                left.setdefault(dist.display_name, []).append(module)
    return left

"""``imagebuild check`` and ``imagebuild build``: thin calls into :class:`ImageBuildEngine`."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from imagebuild_nb.build import ImageBuild
from imagebuild_nb.cli._output import ExitCode, Output, code_for
from imagebuild_nb.cli._progress import TerminalProgress
from imagebuild_nb.cli._specs import Named, SpecOptions, load
from imagebuild_nb.engine import ImageBuildEngine
from imagebuild_nb.errors import BuildFailedError, ImageBuildError, SpecError
from imagebuild_nb.progress.follow import Interrupted, follow
from imagebuild_nb.settings import Settings


def settings_from(args: Any) -> Settings:
    """``IMAGEBUILD_NB_*`` settings with the command line's options on top."""
    ca_files = tuple(getattr(args, "ca_file", ()) or ())
    for path in ca_files:
        if not Path(path).is_file():
            raise SpecError(f"--ca-file {path}: no such file", argument="--ca-file",
                            hint="give a PEM file of CA certificates")
    return Settings.from_env(
        registry=getattr(args, "registry", None),
        network_mode=getattr(args, "network", None),
        extra_ca_files=ca_files or None,
        base_image_mirror=getattr(args, "base_mirror", None),
        local_driver=getattr(args, "driver", None),
        remote_url=getattr(args, "remote_url", None),
        unknown_existence_policy=getattr(args, "unknown_policy", None),
        platform=getattr(args, "platform", None),
    )


def _spec_options(args: Any) -> SpecOptions:
    return SpecOptions(name=args.name, registry=getattr(args, "registry", None),
                       context=args.context, tag=args.tag, platform=args.platform)


# -- check ----------------------------------------------------------------------------------------

def check(args: Any, out: Output) -> int:
    settings = settings_from(args)
    named = [item for spec in args.specs
             for item in load(spec, _spec_options(args), allow_many=True, allow_reference=True)]
    engine = ImageBuildEngine(settings)
    try:
        with ThreadPoolExecutor(max_workers=min(len(named), settings.check_concurrency)) as pool:
            results = list(pool.map(lambda item: engine.check(item.image), named))
    finally:
        engine.close()
    pairs = list(zip(named, results, strict=True))
    rows = [{"spec": item.label, **result.to_dict()} for item, result in pairs]
    out.emit({"results": rows}, "\n".join(_check_line(item, r) for item, r in pairs))
    return _check_code(results)


def _check_line(item: Named, result: Any) -> str:
    label = "" if item.label == result.reference else f"  ({item.label})"
    return f"{result.state:<8} {result.reference}  {result.summary().partition(' ')[2]}".rstrip() \
        + label


def _check_code(results: list[Any]) -> ExitCode:
    if any(r.state == "unknown" for r in results):
        return ExitCode.UNKNOWN
    if any(r.state == "missing" or r.built_from_other_spec for r in results):
        return ExitCode.MISSING
    return ExitCode.OK


# -- build ----------------------------------------------------------------------------------------

def build(args: Any, out: Output) -> int:
    settings = settings_from(args)
    [item] = load(args.spec, _spec_options(args))
    builder = args.builder or settings.default_builder
    if args.no_wait and builder != "remote" and not args.dry_run:
        raise SpecError(
            "--no-wait needs --builder remote: a local build lives only as long as this process",
            argument="--no-wait", hint="run it without --no-wait, or on the build service with "
                                       "--builder remote (then follow it with `imagebuild logs`)")
    engine = ImageBuildEngine(settings)
    try:
        handle = engine.build(item.image, builder=builder, dry_run=args.dry_run,
                              force=args.force, wait=False)
        return _finish(handle, args, out, settings)
    finally:
        engine.close()


def _finish(handle: ImageBuild, args: Any, out: Output, settings: Settings) -> int:
    progress = TerminalProgress(out.stderr, tty=out.tty)
    run = _remote_run(handle)
    if run is not None:
        progress.note(f"Remote build {run[0]}: {run[1]}")
    if args.no_wait and not handle.done:
        out.emit(_document(handle, run), _summary(handle, run))
        return ExitCode.OK
    try:
        follow(handle, progress)
    except Interrupted:
        progress.close()
        out.emit(_document(handle, run))
        out.error_text(f"imagebuild: interrupted; the build is {handle.status}",
                       kind="KeyboardInterrupt", message="interrupted")
        return ExitCode.INTERRUPTED
    finally:
        progress.close()
    handle.wait(raise_on_error=False)
    out.emit(_document(handle, run), _summary(handle, run))
    try:
        handle.raise_for_status()
    except ImageBuildError as error:
        if isinstance(error, BuildFailedError) and error.hint and ".logs" in error.hint:
            error.hint = "the full log is above; fix the failing step and build again"
        out.error(error)
        return code_for(error)
    return ExitCode.OK


def _remote_run(handle: ImageBuild) -> tuple[str, str] | None:
    """The service's build id and page URL (the engine sets them when it submits)."""
    run = handle.remote_run
    return (run.id, run.url) if run is not None else None


def _document(handle: ImageBuild, run: tuple[str, str] | None) -> dict[str, Any]:
    return {
        "uri": handle.uri, "status": handle.status, "digest": handle.digest,
        "image_id": handle.image_id, "builder": handle.builder, "driver": handle.driver,
        "reason": handle.reason, "duration": handle.duration,
        "build_id": run[0] if run else None, "run_url": run[1] if run else None,
        "dry_run": dataclasses.asdict(handle.dry_run) if handle.dry_run else None,
    }


def _summary(handle: ImageBuild, run: tuple[str, str] | None) -> str:
    text = str(handle)
    if run is not None and handle.remote_run is None:
        text += f"\n{'build id':>9}: {run[0]}\n{'run':>9}: {run[1]}"
    return text

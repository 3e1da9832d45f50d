"""``python -m imagebuild_nb.service``: the standalone build service (``jupyter imagebuild``),
the command a Hub-managed service runs (see ``imagebuild_nb.service.hub``)."""

from imagebuild_nb.service.app import main

if __name__ == "__main__":
    main()  # type: ignore[no-untyped-call]  # traitlets' launch_instance is unannotated

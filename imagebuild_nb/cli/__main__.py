"""``python -m imagebuild_nb.cli``: the same as the ``imagebuild`` command."""

from __future__ import annotations

from imagebuild_nb.cli import main

raise SystemExit(main())

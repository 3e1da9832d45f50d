# Installed by imagebuild-nb into {sys.prefix}/etc/ipython/startup: loads the %imagebuild magics
# in every IPython kernel of this environment. Set IMAGEBUILD_NB_NO_AUTOLOAD=1 to turn it off.
# It must never raise (IPython would skip the other startup files) and leaves no names behind.


def _imagebuild_nb_autoload() -> None:
    import os

    if os.environ.get("IMAGEBUILD_NB_NO_AUTOLOAD", "").strip().lower() in ("1", "true", "yes"):
        return
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None:
            return
        shell.extension_manager.load_extension("imagebuild_nb")
    except Exception as error:  # never break the kernel's start-up
        import warnings

        warnings.warn(f"imagebuild-nb: could not load the %imagebuild magics: {error}",
                      stacklevel=1)


_imagebuild_nb_autoload()
del _imagebuild_nb_autoload

"""The cells of the example notebooks that ``notebooks/make_notebooks.py`` writes, one module per
notebook (``widget_tour`` is ``widget_tour.ipynb``, ...); ``common`` holds what they share: the
setup cell's code and the helpers that make a markdown or a code cell."""

"""A tiny module the quickstart image carries in /app/src."""

import os

import six


def describe() -> str:
    return f"analysis ready: MODE={os.environ.get('MODE')}, six {six.__version__}"


if __name__ == "__main__":
    print(describe())

"""`fledge provision`: placeholder, being written."""


def provision() -> None:
    """(provision)"""

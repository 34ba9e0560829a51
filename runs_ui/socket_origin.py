"""Placeholder, replaced by the live module."""


def OriginCheck(app):
    return app

"""Recommenders behind one contract (see :mod:`avrec.models.base`)."""

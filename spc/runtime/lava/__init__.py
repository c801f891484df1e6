"""Lava (Loihi) support. Importing this package first makes lava-nc 0.10.0 importable on Python 3.11."""

from spc.runtime.lava import compat

compat.install()

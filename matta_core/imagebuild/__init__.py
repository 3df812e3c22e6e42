"""Building and running the project's container image with whatever engine the machine has.

A Docker engine where one answers, else podman configured from the files in ``podman/`` (never the system's
own configuration). Where no container registry can be reached, the base image is built from Debian packages.
Image *names* (what KFP may cache on, what a cluster may pull) live in :mod:`matta_core.image`.
"""

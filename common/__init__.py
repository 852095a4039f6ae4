"""Shared plumbing for the stage scripts: paths, artifact I/O, command-line helpers."""

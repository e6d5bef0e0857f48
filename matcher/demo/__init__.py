"""Offline demo data: competitor-style image transformations and a procedural catalogue.

Plain Python (Pillow, numpy, OpenCV); no Django imports, so the evaluation scripts and the
tests can use it without a database.
"""

"""Example input files shipped with augsens (segment JSON files for :mod:`augsens.models.segments`)."""

"""Quality of human and model judgements: agreement, consensus, calibration, diversity.

Modules import their numeric libraries lazily, so importing ``datamill.quality`` is cheap.
"""

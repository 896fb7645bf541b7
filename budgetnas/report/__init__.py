"""Reports of a run (layer 6): the text summary printed by ``search`` and ``show``."""

from budgetnas.report.summary import format_summary

__all__ = ["format_summary"]

"""Appraisals and trends (R5.4, R5.5, R7.2; issue 14 items 3 and 5) and the rollup they, and
the KPIs, read."""

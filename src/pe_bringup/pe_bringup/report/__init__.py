"""``pe-report``: the evaluation matrix (methods x opponents x scenarios) on held-out
seeds, with 95 % intervals and paired comparisons, cached per row, rendered as
self-contained HTML, Markdown, CSV and JSON."""

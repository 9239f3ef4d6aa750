"""Offline evaluation: re-ID metrics over a distance matrix and the data set layouts they run on.

Metric functions are pure (arrays in, numbers out) so they can be checked against hand-worked
cases; data set classes only parse folders; ``reid_eval`` is the one place that joins the two.
"""

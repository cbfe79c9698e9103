"""Problem sources: the demo's toy domains (made here, no network) and real benchmarks.

Every source yields :class:`pidistill.problems.Problem` records.
"""

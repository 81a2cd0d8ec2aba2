"""manyshot's flows: Prefect flows over pure steps, the CLI, and the seams they share (tasks, shot sources,
selectors, configs, seeds, schemas).

Output convention: ``print`` is for what the user asked for (a bank or results path, a report, a table, a
resolved ``K=max``), on stdout and, inside flows (``log_prints=True``), in the run's logs; the logger is for how
the work went (chunks reused or made, rounds, retries, waits), on stderr.
"""

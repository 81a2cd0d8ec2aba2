"""manyshot's flows: Prefect flows over pure steps, the CLI, and the seams they share (tasks, shot sources,
selectors, configs, seeds, schemas).

Layout, lowest layer first (a module imports only from its own subpackage or a lower layer; tests/test_layout.py
checks it): ``core`` (records and specs), ``runtime`` (bank files, locks, progress, interrupts, retries), ``build``
(the bank flow) and ``evaluate`` (the eval flow), which do not import each other, ``report`` (the results report
and analyses), and the front ends at the top level (``cli``, ``config``, ``ablate``, ``schedule``, ``errors``).

Output convention: ``print`` is for what the user asked for (a bank or results path, a report, a table, a
resolved ``K=max``), on stdout and, inside flows (``log_prints=True``), in the run's logs; the logger is for how
the work went (chunks reused or made, rounds, retries, waits), on stderr.
"""

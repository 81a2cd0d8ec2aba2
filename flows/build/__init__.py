"""The bank flow: shot sources, reinforcement rounds, generated queries, refresh, the build report."""

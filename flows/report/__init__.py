"""The results report and what reads finished banks and evals: HTML report, samples, artifacts,
analyses (NLL, similarity), export, diff."""

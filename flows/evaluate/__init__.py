"""The eval flow: many-shot prompts, shot selection, shot counts, embeddings, metrics, results."""

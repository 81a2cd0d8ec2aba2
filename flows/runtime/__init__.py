"""What the flows run on: bank and checkpoint files, file locks, progress display, interrupts, retries.

Imports only flows.core."""

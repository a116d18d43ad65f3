"""The notebook: reading it (reading.py), running it headless (execute.py), replaying its training
log (replay.py), scoring its items (items.py), the training item's evidence from the saved weights
(training_evidence.py, architecture.py, trusted_eval.py, datasets.py), and its PDF (pdf.py, pdf_check.py,
figure_match.py).
"""

"""What grading writes: one submission's results and feedback (results.py), its library warnings
(grading_log.py), staff's manual scores (manual.py), and across a class the similar submissions
(similarity.py) and the class report (class_report.py).
"""

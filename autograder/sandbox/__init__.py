"""The trust boundary: where student code runs and what it can reach.

worker.py is the child process that imports a student's `lib/` (probe.py runs there too);
parent.py is the grader's side of it; protocol.py the wire format between them; confinement.py
how the child is confined; exposure.py refuses a full grade where it could read the hidden cases.
"""

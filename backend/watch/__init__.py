"""Folder watching: watchdog observers whose callbacks only enqueue (observer.py), pure
event coalescing (coalesce.py), folder scanning (scan.py), pure reconcile planning
(reconcile.py) and the component that applies plans (service.py)."""

"""authz-watcher: finds AWS authorization failures in logs and CloudTrail exports.

The pipeline, one module per stage: sources -> extract -> decode -> explain -> alert -> sinks.
"""

__version__ = "0.1.0"

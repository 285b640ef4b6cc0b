"""The names RQ runs batch jobs by, stored in every queued job: `modelyard.jobs.score`,
`modelyard.jobs.score_part` and `modelyard.jobs.join_parts` (batch/queue.py spells them).

They are a permanent contract, not a transition: jobs queued before an upgrade, and workers on other
hosts still running the previous image, find their functions here whatever moves inside the package.
The work itself is in batch/tasks.py.
"""

from modelyard.batch.tasks import join_parts, score, score_part

__all__ = ["join_parts", "score", "score_part"]

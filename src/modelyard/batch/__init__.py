"""Batch scoring: a whole file scored chunk by chunk, big files split into parts and joined (the
core: files, parts, spec, paths, progress), and the adapters that run it as jobs on RQ workers
through Redis (submit, queue, running, split, finish, tasks, records, metrics, worker)."""

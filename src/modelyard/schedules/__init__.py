"""Nightly scoring: schedules read from a file (config), one run's new files enqueued as jobs and
recorded (runs), and the scheduler service that claims each slot exactly once (service)."""

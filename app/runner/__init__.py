"""The background runner: periodic jobs inside the service (issue 12, item 1).

* `job`: what a job is (`Job`) and what each piece of its work gets (`Piece`).
* `claims`: how jobs claim work so that any number of runners never do one piece twice:
  rows locked with `FOR UPDATE SKIP LOCKED`, and named leases with expiry for singletons.
* `models`: the `job_lease` table.
* `runner`: `Runner`, one asyncio task per job: poll, run pieces, back off on failure, stop.
* `jobs`: the service's registered jobs.
* `process`: the runner in the `serve` lifespan and as the `python -m app worker` process.
"""

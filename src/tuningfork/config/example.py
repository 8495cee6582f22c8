"""The commented example study file that ``tuningfork init`` writes."""

EXAMPLE_STUDY_FILE = """\
# A tuningfork study file. Check it with `tuningfork validate study.yaml`, run it with
# `tuningfork run study.yaml`. Every key is documented in docs/study-files.md.

# The study's name, unique within its storage (required).
study: example-quadratic

# Where the study lives. A relative SQLite path is relative to THIS file's directory, so
# every worker finds the same database. Others: journal:///shared/study.log (a file on a
# shared file system), postgresql+psycopg://user@host/db, or leave it out for
# $TUNINGFORK_STORAGE or sqlite:///tuningfork.db.
storage: sqlite:///tuningfork.db

# minimize or maximize the metric read from each trial's result. For several objectives:
#   directions: [minimize, maximize]
#   metrics: [loss, latency]
direction: minimize
metric: value

# Seeds the sampler; the same seed proposes the same configurations.
seed: 0

# The search space: name -> distribution.
#   {type: float, low, high, log: true|false, step}   real numbers
#   {type: int, low, high, log, step}                 integers
#   [a, b, c]                                         a categorical (any scalars)
# `when: {parent: value}` makes a parameter conditional, e.g.
#   momentum: {type: float, low: 0.0, high: 0.99, when: {optimizer: sgd}}
space:
  x: {type: float, low: -5.0, high: 5.0}
  y: {type: float, low: -5.0, high: 5.0}

# How configurations are proposed: auto (the default), random, grid, qmc, tpe or gp, or a
# mapping with the class's options, e.g. {name: tpe, n_startup_trials: 10}.
sampler: {name: tpe, n_startup_trials: 5}

# Early stopping from intermediate reports: none (the default), median, percentile,
# threshold, time, rank, patience, sha, asha, hyperband, bohb, dehb, e.g.
#   scheduler: {name: asha, min_budget: 1, max_budget: 27, eta: 3}
#   scheduler: {any_of: [median, {name: patience, patience: 5}]}
scheduler: none

# The program run for each trial, as a list of arguments (no shell is involved).
# {x} and {y} are replaced by the trial's values; other placeholders: {trial_id},
# {study}, {checkpoint_dir}, {budget}, {seed}. Write {{ and }} for literal braces.
# This one computes a quadratic inline and prints its result as a JSON object.
command:
  - python
  - -c
  - |
    import json, sys
    x, y = float(sys.argv[1]), float(sys.argv[2])
    print(json.dumps(dict(value=(x - 1.0) ** 2 + (y + 2.0) ** 2)))
  - "{x}"
  - "{y}"

# Extra environment variables for the command (values may use placeholders).
env:
  OMP_NUM_THREADS: "1"

# The directory each trial runs in (default: the current directory), e.g.
#   workdir: runs/{trial_id}

# Where the result comes from:
#   {from: stdout}                                       the last JSON object line printed
#   {from: file, path: "{checkpoint_dir}/result.json"}   a JSON file the program writes
#   {from: regex, pattern: "loss=(?P<value>[0-9.eE+-]+)"}  a match in the output
result: {from: stdout}

# Which key of the program's intermediate reports goes to the scheduler (default: the
# first metric).
# report_metric: value

# When to stop: trials in all, seconds in all, seconds per trial, retries of a trial
# whose worker vanished, seconds between asking a command to stop and killing it.
limits:
  n_trials: 20
  timeout: 600
  trial_timeout: 60
  max_retries: 0
  grace_period: 10

# Where trials run: `workers` at once on this machine; `slurm` (optional) holds the
# options of a SLURM launch (partition, account, qos, time_limit_min, gpus_per_task,
# cpus_per_task, mem_gb, additional_sbatch, ...), e.g.
#   slurm: {partition: gpu, account: myproject, time_limit_min: 120, gpus_per_task: 1}
resources:
  workers: 2
"""
"""A commented study file that tunes a tiny inline Python script (written by
``tuningfork init``); it validates as it is."""

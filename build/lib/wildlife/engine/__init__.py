"""The local engine: the pipeline's real state machine run in moto, with Lambdas and Batch jobs run in-process.

``local`` builds and runs it (``LocalEngine``); ``template`` reads what to run from template.yaml;
``moto`` is the one package that touches moto's internals (see its docstring for what it patches
and why); ``watch`` adds the jobs' image counts to an execution's progress (read by
``wildlife.progress``, as ``wildlife watch`` reads it); ``capture`` gives jobs and functions their log files.

Only ``wildlife run`` imports this package: it brings moto, the SAM translator and (for the jobs)
the GPU task, which the commands that talk to a deployed stack never need.
"""

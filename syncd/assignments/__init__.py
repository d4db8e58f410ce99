"""Account assignments: turn the groups syncd syncs into AWS access (sso-admin).

* :mod:`syncd.assignments.config`: the ``[aws]`` table and the ``[[assignments]]`` rules;
* :mod:`syncd.assignments.aws`: the one boto3 seam (sso-admin and Organizations);
* :mod:`syncd.assignments.resolve`: rules × synced groups × accounts → desired assignments (pure);
* :mod:`syncd.assignments.reconcile`: desired, existing and syncd-made → changes (pure);
* :mod:`syncd.assignments.manager`: :class:`~syncd.assignments.manager.AssignmentManager`, the
  engine's :class:`~syncd.engine.Assigner`, and :func:`~syncd.assignments.manager.build_assigner`.

Importing this package imports nothing else, so the configuration can use its models without
loading boto3.
"""

"""AWS access: turn the groups syncd syncs into account and application assignments, and keep
the permission sets the config defines (sso-admin).

* :mod:`syncd.assignments.config`: the ``[aws]`` table, the ``[[assignments]]`` rules, the
  ``[[permission_sets]]`` and ``[[applications]]`` tables;
* :mod:`syncd.assignments.aws`: the one boto3 seam (sso-admin and Organizations), with
  :mod:`syncd.assignments.aws_resources` for permission sets' contents and applications;
* :mod:`syncd.assignments.permission_sets`, :mod:`syncd.assignments.applications`: what to
  create, update, re-provision or delete (pure);
* :mod:`syncd.assignments.access_code`: reads, applies and records those;
* :mod:`syncd.assignments.resolve`: rules × synced groups × accounts → desired assignments (pure);
* :mod:`syncd.assignments.reconcile`: desired, existing and syncd-made → changes (pure);
* :mod:`syncd.assignments.manager`: :class:`~syncd.assignments.manager.AssignmentManager`, the
  engine's :class:`~syncd.engine.Assigner`, and :func:`~syncd.assignments.manager.build_assigner`.

Importing this package imports nothing else, so the configuration can use its models without
loading boto3.
"""
